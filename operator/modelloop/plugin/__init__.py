"""``kubectl modelloop``: see and steer Models from the terminal."""
