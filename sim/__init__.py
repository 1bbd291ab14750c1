"""LOOP simulator: ILI9341 panel model, fake spidev and GPIO, pygame viewer."""
