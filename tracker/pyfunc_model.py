"""xp's own MLflow pyfunc model, for a task that no transformers pipeline serves (question
answering: transformers 5 removed its pipeline), and for a model trained as an adapter (a
pipeline would fetch its base model from the hub). It holds the save_pretrained folder and its model
card, and predicts as `xp predict` does, with the task that trained the model (`Task.predict`), so
that `mlflow.pyfunc.load_model(...).predict(rows)` and `xp predict` give the same answers. Loading
it needs xp, and the plugin of its task, installed: as the transformers flavor needs transformers."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from mlflow.pyfunc import PythonModel

ARTIFACT = "model"  # the artifact (a save_pretrained folder with xp.json) the pyfunc model reads


class TaskModel(PythonModel):
    """Rows of the text columns the model was trained on in; the columns the task predicts out."""

    def load_context(self, context: Any) -> None:
        from tracker.model_export import BASE_MODEL
        from tracker.predict import load_for_prediction
        from tracker.predict_model import from_folder
        from tracker.registry import load_registry

        folder = Path(context.artifacts[ARTIFACT])
        self.source = from_folder(folder, str(folder))
        # A model trained as an adapter loads on the base model it records, or on the one the
        # loader names: mlflow.pyfunc.load_model(uri, model_config={"base_model": FOLDER}).
        base_model = (context.model_config or {}).get(BASE_MODEL)
        self.registry = load_registry()
        self.task, self.model, self.tokenizer = load_for_prediction(self.source, self.registry, base_model)

    # No annotations: MLflow reads those of `predict` as a schema of its own, besides the signature.
    def predict(self, context, model_input, params=None):
        import pandas as pd

        from tracker.predict import pick_device, predict_frame, task_of

        frame = model_input if isinstance(model_input, pd.DataFrame) else pd.DataFrame(model_input)
        # The signature's params (a generating task's decoding keys) change the task's keys for
        # this call: predict(rows, params={"num_beams": 4}).
        task = (
            task_of(self.source, self.registry, params).of_model(self.source.card.label_names, self.model.config)
            if params
            else self.task
        )
        return predict_frame(
            frame,
            self.source.card.text_columns or list(frame.columns),
            self.model,
            self.tokenizer,
            task,
            self.source,
            probabilities=False,
            batch_size=32,
            device=pick_device("auto"),
        )
