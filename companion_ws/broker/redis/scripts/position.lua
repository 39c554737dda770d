return m
