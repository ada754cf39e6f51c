"""Lightning callbacks of surrogateshap (installed as ``surrogateshap.callbacks``).

- :class:`BankWriter`: writes a predict run's samples as a resumable contributor bank;
- :class:`SurrogateShapCallback`: attributes that bank when the predict run ends;
- :class:`ContributorValueMonitor`: attributes the model being trained every k epochs;
- :class:`SavePretrained`: writes a trained model in its ``from_pretrained`` format when fitting ends.
"""

from .attribution import SurrogateShapCallback
from .bank_writer import BankWriter
from .save_pretrained import SavePretrained
from .value_monitor import ContributorValueMonitor

__all__ = ["BankWriter", "ContributorValueMonitor", "SavePretrained", "SurrogateShapCallback"]
