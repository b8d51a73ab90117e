"""A run's epochs as TensorBoard scalars (``train --tensorboard``), written by tensorboardX.

Tags: ``loss/train``, ``loss/val``, ``val/G``, ``val/C``, ``val/mIoU``, ``val_iou/<class>``,
``lr``, ``seconds/train``, ``seconds/val``, ``seconds/epoch``; the step is the epoch. The
events go to ``RUN/tensorboard``: ``tensorboard --logdir RUN/tensorboard`` shows them.
"""

from .engine.folders import TENSORBOARD
from .errors import MissingDependency

FOLDER = TENSORBOARD  # RUN/tensorboard


def require():
    """tensorboardX's SummaryWriter class; one line when tensorboardX is missing (called
    before a run starts, so the mistake costs no training)."""
    try:
        from tensorboardX import SummaryWriter
    except ImportError:
        raise MissingDependency("--tensorboard needs tensorboardX: pip install 'tinysegnet[tensorboard]' "
                                "(or pip install tensorboardX)") from None
    return SummaryWriter


def writer(log_dir):
    """A SummaryWriter on ``log_dir`` (appending when it holds a resumed run's events)."""
    return require()(log_dir)


def add_epoch(writer, record):
    """One epoch's record (a metrics.jsonl line) as scalars at step ``record["epoch"]``."""
    step = record["epoch"]
    scalars = {"loss/train": record["loss"], "loss/val": record.get("val_loss"), "val/G": record["G"],
               "val/C": record["C"], "val/mIoU": record["mIoU"], "lr": record.get("lr"),
               "seconds/train": record["seconds"], "seconds/val": record["val_seconds"],
               "seconds/epoch": record.get("total_seconds")}
    scalars.update({f"val_iou/{name}": iou for name, iou in record["class_iou"].items()})
    for tag, value in scalars.items():
        if value is not None:  # an IoU of a class the split does not show
            writer.add_scalar(tag, value, step)
    writer.flush()
