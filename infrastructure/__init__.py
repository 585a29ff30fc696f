"""Adapters: store, keystore, settings... the layer that touches disks, sockets and clocks."""
