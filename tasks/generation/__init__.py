"""Generation: prompts, model resolution, backends, one shard, the resumable CLI run."""
