"""How a plugin declares the constraints of its keys, once, where the key is declared.

Types and bounds are pydantic's: `lr: Annotated[float, Field(gt=0)] = 5e-5`. xp checks every
value against them before anything is built (`xp validate` and `xp run` alike), writes them into
`xp schema`, and shows them in `xp plugins`. Numbers must be finite unless a key says
`Field(allow_inf_nan=True)`. What one key's annotation cannot say is declared beside it:

- `RunsCode("why")` in a key's annotation: a true (or any non-empty) value makes xp run Python
  that is not an installed plugin; refused unless the user passes `--allow-code`.
- `MetricName()` in a key's annotation: the value names an evaluation metric, so it must be one
  the experiment's metrics produce (`loss`, or `f1`/`eval_f1`, ...).
- `@rules(rule, ...)` on a factory: checks between its keys. A rule takes the section's resolved
  options and yields `(key, message)` for each problem.
- `@experiment_rules(rule, ...)`: checks against other sections; a rule takes the options and
  every section's resolved options (`sections["tokenizer"]["max_length"]`) and yields
  `(key, message)`. Say what you assume of a section another plugin fills.
- `@data_rules(rule, ...)`: checks that need the loaded data; a rule takes the options and the
  `TaskData` and yields `(key, message)`. xp runs them after loading the dataset, before building
  the model or creating a run (and in `xp validate --data`).
- `@outputs("name", ...)` or `@outputs(function_of_options)` on a metric: the score names it
  produces, so a best-model metric can be checked before training.
- `@starter(function)` on a dataset: how `xp init` writes its section for a folder of data
  (tracker.spec.markers.starter).
"""

from __future__ import annotations

from typing import Annotated

from pydantic import AfterValidator, Field

from tracker.spec.markers import MetricName, RunsCode, data_rules, experiment_rules, outputs, rules, starter

__all__ = [
    "AfterValidator",
    "Annotated",
    "Field",
    "Fraction",
    "MetricName",
    "Name",
    "NonNegativeFloat",
    "NonNegativeInt",
    "PositiveFloat",
    "PositiveInt",
    "Ratio",
    "RunsCode",
    "Seed",
    "data_rules",
    "experiment_rules",
    "outputs",
    "rules",
    "starter",
]

# The shapes most keys take, named once.
PositiveInt = Annotated[int, Field(ge=1)]
NonNegativeInt = Annotated[int, Field(ge=0)]
PositiveFloat = Annotated[float, Field(gt=0)]
NonNegativeFloat = Annotated[float, Field(ge=0)]
Ratio = Annotated[float, Field(ge=0, le=1)]  # a share of something: 0 to 1, both included
Fraction = Annotated[float, Field(gt=0, lt=1)]  # strictly between 0 and 1 (decay factors, betas)
Name = Annotated[str, Field(min_length=1)]
# numpy's RandomState takes seeds in [0, 2**32 - 1]; torch takes those too.
Seed = Annotated[int, Field(ge=0, le=2**32 - 1)]
