"""Framework-free code that the torch and the Paddle sides share, by concern: `hyperparameters` (the
method's constants), `project` (where the project is, how it starts a process of its own), `data`, `metric`,
`app` (the training application), `state_dicts` (the key map and the checkpoint checks) and `infra`.
Importing this package never imports torch or paddle."""
