"""The engine: what the commands, the lessons and the experiments call.

``RunConfig`` says what a run is; ``start`` / ``restore`` make one in memory, ``fit`` trains
it (``train_epoch`` is one pass), ``evaluate_split`` / ``predict_split`` / ``predict`` use a
trained model, ``monte_carlo*`` / ``predict_monte_carlo`` sample one with dropout on,
``recompute_bn_statistics`` refreshes its batch-norm statistics, and ``load_run`` reads a
checkpoint back; ``train_step`` is one SGD step anyone can call on a model and a batch.
Nothing here prints or parses arguments: progress goes through callbacks.
"""

from .config import DEFAULTS, FORMAT, ConfigError, RunConfig, checkpoint_meta, read_meta
from .inference import (evaluate_split, load_eval_data, load_run, monte_carlo,
                        monte_carlo_estimates, monte_carlo_split, predict, predict_monte_carlo,
                        predict_split, recompute_bn_statistics, score_predictions)
from .training import (RUN_FILES, Diverged, Interrupted, Run, RunFolderError, check_new_run_folder,
                       check_resume_folder, finish, fit, load_data, restore, save, start, train_epoch,
                       train_step,
                       unfinished)

__all__ = ["RunConfig", "ConfigError", "DEFAULTS", "FORMAT", "checkpoint_meta", "read_meta", "Run",
           "start", "restore", "fit", "train_epoch", "train_step", "save", "load_data", "Diverged",
           "Interrupted", "RunFolderError", "RUN_FILES", "unfinished", "finish",
           "check_new_run_folder", "check_resume_folder", "evaluate_split", "predict_split",
           "predict", "recompute_bn_statistics", "load_run", "load_eval_data", "monte_carlo",
           "monte_carlo_estimates", "monte_carlo_split", "predict_monte_carlo",
           "score_predictions"]
