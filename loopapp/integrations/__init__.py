"""Faces of the device on the network: Home Assistant over MQTT, and the mDNS advertisement.

They depend on the library's interfaces (the player's controls, status and change counter,
the library's playlist) and never the other way round: ``libloop`` imports neither paho nor
zeroconf. Both are core dependencies of the package (the device's faces, like flask and
waitress), yet imported late, inside the components that use them, so that a broken or
missing install becomes one sentence ("MQTT needs paho-mqtt: pip install 'paho-mqtt>=2.0'")
in the health report instead of a device that does not start.
"""
