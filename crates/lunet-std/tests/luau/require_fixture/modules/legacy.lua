return { legacy = true }
