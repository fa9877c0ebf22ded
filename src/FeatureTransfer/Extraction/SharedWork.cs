namespace FeatureTransfer.Extraction;

/// <summary>
/// The pieces of batches in progress (images to decode, ONNX Runtime runs) that an idle worker may take: a worker with
/// no batch left to start (the tail of a job) or one waiting for the reorder window helps the others finish instead of
/// idling. Who computes a piece never changes its bytes: the same images, the same runs, the same session.
/// </summary>
internal sealed class SharedWork
{
    private readonly List<Loop> _open = [];

    /// <summary>Runs <paramref name="body"/> for 0..<paramref name="count"/>-1 on this thread, with any idle worker taking
    /// items too; returns when every item is done, rethrowing the first exception of a body.</summary>
    public void Run(int count, Action<int> body, CancellationToken cancellationToken)
    {
        var loop = new Loop(count, body);
        bool shared = count > 1; // a single item is not worth offering
        if (shared) lock (_open) _open.Add(loop);
        loop.Help();
        if (shared) lock (_open) _open.Remove(loop);
        loop.Wait(cancellationToken);
    }

    /// <summary>Takes items of the loops in progress until none is left; false when there was nothing to do.</summary>
    public bool Help()
    {
        Loop[] open;
        lock (_open)
        {
            if (_open.Count == 0) return false;
            open = [.. _open];
        }
        bool any = false;
        foreach (var loop in open) any |= loop.Help();
        return any;
    }

    private sealed class Loop(int count, Action<int> body)
    {
        private readonly int _count = count;
        private int _next = -1;
        private int _remaining = count;
        private readonly ManualResetEventSlim _done = new(count == 0);
        private Exception? _error;

        public bool Help()
        {
            bool any = false;
            int i;
            while ((i = Interlocked.Increment(ref _next)) < _count)
            {
                any = true;
                try { body(i); }
                catch (Exception e) { Interlocked.CompareExchange(ref _error, e, null); }
                finally
                {
                    if (Interlocked.Decrement(ref _remaining) == 0) _done.Set();
                }
            }
            return any;
        }

        public void Wait(CancellationToken cancellationToken)
        {
            _done.Wait(cancellationToken);
            if (_error is { } e) System.Runtime.ExceptionServices.ExceptionDispatchInfo.Throw(e);
        }
    }
}
