"""Order routing and settlement: one cart across many sellers, paid once, split exactly."""
