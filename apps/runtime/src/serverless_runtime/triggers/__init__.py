"""What wakes the loop, and what it hands to `invoke`."""
