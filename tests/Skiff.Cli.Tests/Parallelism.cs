// These tests mostly wait: on real servers and agents, on grace periods, on processes they started. Two at once (the
// default on two CPUs) left the machine idle in those waits; a third one fills them.
[assembly: CollectionBehavior(MaxParallelThreads = 3)]
