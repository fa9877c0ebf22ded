using FeatureTransfer.Extraction;

namespace FeatureTransfer.Tests.Extraction;

/// <summary>The pieces of a batch that idle extraction workers take: each exactly once, errors back to the owner.</summary>
public class SharedWorkTests
{
    [Fact]
    public void Every_item_runs_exactly_once_while_idle_threads_help()
    {
        var work = new SharedWork();
        using var stop = new CancellationTokenSource();
        var helped = new int[2];
        var helpers = Enumerable.Range(0, 2).Select(h => new Thread(() =>
        {
            while (!stop.IsCancellationRequested)
                if (work.Help()) Interlocked.Increment(ref helped[h]);
        })).ToList();
        helpers.ForEach(t => t.Start());
        var counts = new int[20_000];
        var threads = new HashSet<int>();
        for (int round = 0; round < 20; round++)
            work.Run(1000, i =>
            {
                Interlocked.Increment(ref counts[round * 1000 + i]);
                lock (threads) threads.Add(Environment.CurrentManagedThreadId);
                Thread.SpinWait(2000); // long enough that the helpers find items left
            }, CancellationToken.None);
        stop.Cancel();
        helpers.ForEach(t => t.Join());
        Assert.All(counts, c => Assert.Equal(1, c));
        Assert.True(threads.Count > 1, "no helper ever took an item");
    }

    [Fact]
    public void A_failing_item_surfaces_in_the_owner_after_all_items_finished()
    {
        var work = new SharedWork();
        int done = 0;
        var e = Assert.Throws<InvalidDataException>(() => work.Run(8, i =>
        {
            if (i == 3) throw new InvalidDataException("item 3");
            Interlocked.Increment(ref done);
        }, CancellationToken.None));
        Assert.Equal("item 3", e.Message);
        Assert.Equal(7, done);
        Assert.False(work.Help()); // nothing left open
    }
}
