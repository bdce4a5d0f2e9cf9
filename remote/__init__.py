"""Training on Modal: the app (image, GPU, volume, functions) and the client.

- config: names, timeouts, GPU prices (plain data, no `modal` import)
- app: the Modal app `nsm-tui` (deploy with `modal deploy -m remote.app`)
- worker: the functions' bodies as plain functions (the engine on the volume; the stream relay)
- client: every call this machine makes to Modal, each under a deadline
- follow, mirror: following a run and mirroring its events into the local store
- launch, runs, volume: starting/resuming/stopping runs; remote.json; the volume's runs and checkpoints
- errors: what can go wrong, with messages for the user

Imports nsm and modal, never textual or tui.
"""
