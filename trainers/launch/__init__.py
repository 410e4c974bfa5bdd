"""What ``train.py`` does once its arguments are parsed: build the config, turn a training command pointed at a
finished run into its evaluation, flag schedule overrides, take the run lock and drive the trainer."""
