"""Typing clients: the keyboard state (strip, accept, keystroke count), the terminal
keyboard (`nextword type`) and the web typing page (`nextword web`)."""
