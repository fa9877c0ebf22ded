namespace FeatureTransfer.Imaging;

// Per-thread scratch buffers.
internal sealed partial class ImageTensorizer
{
    /// <summary>Per-thread buffers, grown on demand and reused for every image the thread decodes.</summary>
    internal sealed class Scratch
    {
        public byte[] File = [];
        public byte[] Pixels = [];
        public byte[] Oriented = [];
        public byte[] Gray = [];
        public byte[] Horizontal = [];
        public int[]? Kx, Ky, Bx, By;
        public int[] Kx4 = []; // Kx with each weight repeated for the 4 lanes of a pixel (two taps per AVX2 multiply)
        private int[] _ints = [];

        public int[] RentInts(int length)
        {
            if (_ints.Length < length) _ints = new int[length];
            return _ints;
        }
        private Preprocessing? _lutFor;
        private readonly float[] _lut = new float[3 * 256];

        /// <summary>Buffers above this are dropped after each image (typical photos need a few MB).</summary>
        private const int KeepBytes = 64 << 20;

        public void TrimLarge()
        {
            if (File.Length > KeepBytes) File = [];
            if (Pixels.Length > KeepBytes) Pixels = [];
            if (Oriented.Length > KeepBytes) Oriented = [];
            if (Gray.Length > KeepBytes) Gray = [];
            if (Horizontal.Length > KeepBytes) Horizontal = [];
        }

        public byte[] Rent(ref byte[] buffer, int length)
        {
            if (buffer.Length < length) buffer = new byte[Math.Max(length, buffer.Length + buffer.Length / 2)];
            return buffer;
        }

        public float[] Lut(Preprocessing p)
        {
            if (!ReferenceEquals(_lutFor, p))
            {
                for (int c = 0; c < p.Channels; c++)
                    for (int v = 0; v < 256; v++)
                        _lut[c * 256 + v] = (float)((v * (double)p.Scale - p.Mean[c]) / p.Std[c]);
                _lutFor = p;
            }
            return _lut;
        }

        /// <summary>
        /// PIL precompute_coeffs + normalize_coeffs_8bpc for output positions [start, start+count) of a resize
        /// inSize -> outSize. Positions outside [0, outSize) (crop larger than the image) get no taps (padding).
        /// bounds[2i] = first input index, bounds[2i+1] = number of taps.
        /// </summary>
        public int[] Coefficients(ref int[]? kk, ref int[]? bounds, int inSize, int outSize, int start, int count, out int ksize)
        {
            double scale = (double)inSize / outSize;
            double filterScale = Math.Max(scale, 1.0);
            double support = 1.0 * filterScale; // bilinear filter support 1
            ksize = (int)Math.Ceiling(support) * 2 + 1;
            if (kk is null || kk.Length < count * ksize) kk = new int[count * ksize];
            if (bounds is null || bounds.Length < 2 * count) bounds = new int[2 * count];
            Span<double> w = ksize <= 512 ? stackalloc double[ksize] : new double[ksize];
            for (int i = 0; i < count; i++)
            {
                int xx = start + i;
                if (xx < 0 || xx >= outSize) { bounds[2 * i] = 0; bounds[2 * i + 1] = 0; continue; }
                double center = (xx + 0.5) * scale;
                double ss = 1.0 / filterScale;
                int xmin = (int)(center - support + 0.5);
                if (xmin < 0) xmin = 0;
                int xmax = (int)(center + support + 0.5);
                if (xmax > inSize) xmax = inSize;
                xmax -= xmin;
                double ww = 0;
                for (int x = 0; x < xmax; x++)
                {
                    double t = Math.Abs((x + xmin - center + 0.5) * ss);
                    w[x] = t < 1.0 ? 1.0 - t : 0.0;
                    ww += w[x];
                }
                for (int x = 0; x < ksize; x++)
                {
                    double v = x < xmax && ww != 0.0 ? w[x] / ww : 0.0;
                    kk[i * ksize + x] = v < 0 ? (int)(-0.5 + v * (1 << PrecisionBits)) : (int)(0.5 + v * (1 << PrecisionBits));
                }
                bounds[2 * i] = xmin;
                bounds[2 * i + 1] = xmax;
            }
            return kk;
        }
    }
}
