-- The OAuth state now names its installation (`<id>.<random>`): the callback goes straight to
-- it and the machine checks the hash. The lookup by hash, and the index every write paid for, go.
drop index workflows_state_hash_idx;
