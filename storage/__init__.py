"""Everything taco-eval writes to disk: layout, atomic writes, schemas, hashes."""
