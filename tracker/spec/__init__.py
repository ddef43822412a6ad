"""Experiment files as data: parse and override (`parse`), declare constraints (`declare`), read a
factory's signature as a section schema (`keys`), check a whole file (`check`), check it against
the loaded data (`data`) and export the JSON Schema (`jsonschema`).

Nothing here imports torch, transformers, datasets or mlflow.
"""
