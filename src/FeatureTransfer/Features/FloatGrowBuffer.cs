namespace FeatureTransfer.Features;

/// <summary>Growable float storage for readers that do not know the row count in advance.</summary>
internal sealed class FloatGrowBuffer(int capacity)
{
    private float[] _data = new float[Math.Max(capacity, 16)];
    public int Count { get; private set; }

    public Span<float> Append(int n)
    {
        if (Count + n > _data.Length)
        {
            long want = Math.Max((long)_data.Length * 2, (long)Count + n);
            if (want > Array.MaxLength) want = Array.MaxLength;
            if (want < Count + n) throw new InsufficientMemoryException("feature table larger than one .NET array");
            Array.Resize(ref _data, (int)want);
        }
        var s = _data.AsSpan(Count, n);
        Count += n;
        return s;
    }

    public float[] ToArray() => Count == _data.Length ? _data : _data.AsSpan(0, Count).ToArray();
}
