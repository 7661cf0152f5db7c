"""Judging: the comparison rules, evaluating samples through the execution pool, one shard."""
