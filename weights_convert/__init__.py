"""Strict conversion of GreedyHash and AlexNet weights between torch `.pth` and Paddle `.pdparams`."""
