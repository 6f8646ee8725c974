"""Workers (Dramatiq actors). Built in a later issue."""
