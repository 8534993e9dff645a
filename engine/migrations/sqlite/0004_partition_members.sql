-- Worker replicas consuming the partition queues (`--role worker`): each
-- one writes its row every rebalance interval, and the members whose
-- heartbeat is recent share the partitions between them. One set of
-- members per partition queue prefix.
CREATE TABLE partition_members (
    queue_prefix TEXT   NOT NULL,
    member       TEXT   NOT NULL,
    heartbeat_at BIGINT NOT NULL,
    joined_at    BIGINT NOT NULL,
    PRIMARY KEY (queue_prefix, member)
);
