"""libloop: drive an ILI9341 SPI TFT, turn media into display-ready frames, and play them.

The library never imports pygame, Flask or the simulator; hardware packages (spidev, gpiod)
and the video decoder are imported only when first used.
"""

from __future__ import annotations

__version__ = "0.1.0"
