"""The training add-ons built into ftcli, each set in `trainer` and off by default.

- `adversarial`: FGM, PGD and FreeLB perturbations of the input embeddings (`trainer.adversarial`),
  which `perturbation` adds to the model and sizes per example;
- `rdrop`: R-Drop's two dropout passes and their symmetric KL (`trainer.rdrop`);
- `label_smoothing`: smoothed cross-entropy (`trainer.label_smoothing`);
- `layer_decay`: layer-wise learning-rate decay (`trainer.layer_decay`);
- `ema`: a moving average of the weights, evaluated and saved (`trainer.ema`).

`compose.training_setup` builds a run's training step and learning-rate factors from them, in a
fixed order, and refuses the add-ons the task or model cannot take. Add-ons registered from outside
ftcli (`trainer.add_ons`, `ftcli.engine.step.ADD_ONS`) go between the loss-reworking ones and
adversarial training.
"""
