"""Laundry machines on the device gateway: the lock protocol as a device of
kind ``laundry`` (docs/protocol/laundry-v1.md). machines.py holds their
connections, protocol.py parses what they add to the lock protocol, and
simulator.py is a simulated washer (``doorkeep simulate machine``)."""
