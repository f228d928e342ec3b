"""Training of the student: recipe (optimiser, schedule), losses, tasks, loop, DDP, evaluation."""
