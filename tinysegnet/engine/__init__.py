"""The engine: what the commands, the lessons and the experiments call.

``RunConfig`` says what a run is; ``start`` / ``restore`` make one in memory, ``fit`` trains
it (``train_epoch`` is one pass), ``evaluate_split`` / ``predict_split`` / ``predict`` use a
trained model, ``monte_carlo*`` / ``predict_monte_carlo`` sample one with dropout on,
``recompute_bn_statistics`` refreshes its batch-norm statistics, and ``load_run`` reads a
checkpoint back; ``train_step`` is one SGD step anyone can call on a model and a batch
(``GraphedStep`` the same step replayed from CUDA graphs on a GPU), and
``standardize`` makes a network's input from uint8 images. Inference functions take
``(model, split, mean, std, batch_size=...)`` and run where the model's parameters live.
Nothing here prints or parses arguments: progress goes through callbacks. ``folders`` holds
the run-folder checks the ``train`` command makes before it starts; ``config`` the checkpoint
metadata's format.
"""

from ..data.transforms import standardize
from . import folders
from .config import ConfigError, RunConfig
from .graphed import GraphedStep
from .pretrained import load_pretrained
from .inference import (evaluate_split, load_eval_data, load_run, monte_carlo,
                        monte_carlo_estimates, monte_carlo_split, predict, predict_monte_carlo,
                        predict_split, recompute_bn_statistics, score_predictions)
from .training import (Diverged, Interrupted, Run, end_epoch, finish, fit, load_data, restore, save, start,
                       train_epoch)
from .step import train_step

__all__ = ["RunConfig", "ConfigError", "Run", "start", "restore", "fit", "train_epoch", "train_step", "GraphedStep",
           "save", "end_epoch", "finish", "load_data", "Diverged", "Interrupted", "evaluate_split", "predict_split",
           "predict", "recompute_bn_statistics", "load_run", "load_eval_data", "monte_carlo",
           "monte_carlo_estimates", "monte_carlo_split", "predict_monte_carlo", "score_predictions",
           "standardize", "load_pretrained", "folders"]
