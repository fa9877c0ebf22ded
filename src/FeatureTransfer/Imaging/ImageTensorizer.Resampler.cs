using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;

namespace FeatureTransfer.Imaging;

// PIL's antialiased bilinear resize + center crop + normalisation, in its 8-bit fixed-point arithmetic.
internal sealed partial class ImageTensorizer
{
    /// <summary>
    /// Resize + crop + normalise from an 8-bit source (stride 1 = gray, 4 = RGBA). PIL's resampling (Resample.c,
    /// bilinear filter widened by the downscale factor = antialias, 22-bit fixed-point weights, horizontal pass
    /// rounded to 8 bits, then vertical) written by hand because no library here reproduces it; only the rows and
    /// columns that survive the crop are computed.
    /// </summary>
    internal static void Tensorize(string name, ReadOnlySpan<byte> src, int sw, int sh, int stride, Preprocessing p, Span<float> dest, Scratch s)
    {
        int outW = p.Width, outH = p.Height, channels = p.Channels;
        int rw, rh, left, top;
        if (p.Crop == "none")
        {
            (rw, rh, left, top) = (outW, outH, 0, 0);
        }
        else
        {
            // torchvision 0.14 _compute_resized_output_size: long side = int(size * long / short).
            long longSide = (long)p.Resize * Math.Max(sw, sh) / Math.Min(sw, sh);
            if (longSide > MaxResizedSide)
                throw new InvalidImageException(name, $"extreme aspect ratio {sw}x{sh}: the resized image would be {longSide:N0} pixels long");
            if (sw <= sh) { rw = p.Resize; rh = (int)longSide; }
            else { rh = p.Resize; rw = (int)longSide; }
            left = CropStart(rw, outW);
            top = CropStart(rh, outH);
        }

        var kx = s.Coefficients(ref s.Kx, ref s.Bx, sw, rw, left, outW, out int ksx);
        var bx = s.Bx!;
        var ky = s.Coefficients(ref s.Ky, ref s.By, sh, rh, top, outH, out int ksy);
        var by = s.By!;

        int rowFirst = int.MaxValue, rowLast = -1;
        for (int i = 0; i < outH; i++)
        {
            if (by[2 * i + 1] == 0) continue;
            rowFirst = Math.Min(rowFirst, by[2 * i]);
            rowLast = Math.Max(rowLast, by[2 * i] + by[2 * i + 1] - 1);
        }

        // Source channel for each output channel: RGB/BGR from RGBA, or the single gray channel replicated.
        Span<int> map = stackalloc int[3];
        if (stride == 1) map.Clear();
        else if (p.ChannelOrder == ChannelOrder.BGR) { map[0] = 2; map[1] = 1; map[2] = 0; }
        else { map[0] = 0; map[1] = 1; map[2] = 2; }

        // Horizontal pass over the needed rows into tmp[row][col][lane] as 8-bit, like PIL's intermediate image
        // (lanes = 4 for RGBA sources, the 4th ignored, so one SIMD vector holds a pixel; 1 for gray).
        int lanes = stride == 1 ? 1 : 4;
        int rows = rowLast >= rowFirst ? rowLast - rowFirst + 1 : 0;
        int rowBytes = outW * lanes;
        var tmp = s.Rent(ref s.Horizontal, Math.Max(1, rows * rowBytes));
        var acc = s.RentInts(rowBytes);
        var lut = s.Lut(p);
        bool pairs = lanes == 4 && Avx2.IsSupported;
        if (pairs)
        {
            if (s.Kx4.Length < outW * ksx * 4) s.Kx4 = new int[outW * ksx * 4];
            for (int i = 0; i < outW * ksx; i++) s.Kx4.AsSpan(4 * i, 4).Fill(kx[i]);
        }
        int plane = outH * outW;
        bool nchw = p.Layout == TensorLayout.NCHW;
        unsafe
        {
            fixed (byte* srcPtr = src)
            fixed (byte* tmpPtr = tmp)
            fixed (int* kxPtr = kx, bxPtr = bx, kyPtr = ky, accPtr = acc, kx4Ptr = s.Kx4)
            fixed (float* lutPtr = lut)
            {
                for (int r = 0; r < rows; r++)
                {
                    byte* line = srcPtr + (long)(r + rowFirst) * sw * stride;
                    byte* o = tmpPtr + r * rowBytes;
                    if (lanes == 1) HorizontalGray(line, o, outW, kxPtr, ksx, bxPtr);
                    else if (pairs) HorizontalRgbaPairs(line, o, outW, kxPtr, kx4Ptr, ksx, bxPtr);
                    else HorizontalRgba(line, o, outW, kxPtr, ksx, bxPtr);
                }

                // Vertical pass per output row, vectorised along the row, then the per-channel lookup table
                // (v*scale - mean)/std straight into the tensor slice, one channel plane (NCHW) at a time.
                bool padColumns = false;
                for (int j = 0; j < outW; j++) padColumns |= bxPtr[2 * j + 1] == 0;
                fixed (float* destPtr = dest)
                {
                    for (int i = 0; i < outH; i++)
                    {
                        int ymin = by[2 * i] - rowFirst, yn = by[2 * i + 1];
                        if (yn > 0) VerticalRow(tmpPtr + ymin * rowBytes, rowBytes, yn, kyPtr + i * ksy, accPtr);
                        if (nchw && yn > 0 && !padColumns)
                        {
                            for (int oc = 0; oc < channels; oc++)
                            {
                                float* d = destPtr + oc * plane + i * outW;
                                int* a = accPtr + map[oc];
                                float* l = lutPtr + oc * 256;
                                // Weights are non-negative and sum to ~1 << PrecisionBits: only the upper clamp can bite.
                                for (int j = 0; j < outW; j++) d[j] = l[Math.Min(a[j * lanes] >> PrecisionBits, 255)];
                            }
                            continue;
                        }
                        for (int j = 0; j < outW; j++)
                        {
                            bool pad = yn == 0 || bxPtr[2 * j + 1] == 0;
                            int* px = accPtr + j * lanes;
                            for (int oc = 0; oc < channels; oc++)
                            {
                                int v = pad ? 0 : Math.Clamp(px[map[oc]] >> PrecisionBits, 0, 255);
                                float f = lutPtr[oc * 256 + v];
                                if (nchw) destPtr[oc * plane + i * outW + j] = f;
                                else destPtr[(i * outW + j) * channels + oc] = f;
                            }
                        }
                    }
                }
            }
        }
    }

    private const int Half = 1 << (PrecisionBits - 1);

    /// <summary>Longest resized side accepted (coordinates stay far from int overflow).</summary>
    private const long MaxResizedSide = 1L << 28;

    private static unsafe void HorizontalGray(byte* line, byte* o, int outW, int* kx, int ksx, int* bx)
    {
        for (int j = 0; j < outW; j++)
        {
            int xmin = bx[2 * j], xn = bx[2 * j + 1];
            int* k = kx + j * ksx;
            int a = Half;
            for (int t = 0; t < xn; t++) a += line[xmin + t] * k[t];
            o[j] = Clip8(a);
        }
    }

    private static unsafe void HorizontalRgba(byte* line, byte* o, int outW, int* kx, int ksx, int* bx)
    {
        var half = Vector128.Create(Half);
        for (int j = 0; j < outW; j++)
        {
            int xmin = bx[2 * j], xn = bx[2 * j + 1];
            int* k = kx + j * ksx;
            byte* px = line + xmin * 4;
            var a = half;
            for (int t = 0; t < xn; t++)
                a += Pixel(px + 4 * t) * Vector128.Create(k[t]);
            var v = Vector128.Clamp(Vector128.ShiftRightArithmetic(a, PrecisionBits), Vector128<int>.Zero, Vector128.Create(255));
            // Values are in 0..255, so truncating narrowing is exact: one 4-byte store per pixel (the 4th lane is unused).
            var v16 = Vector128.Narrow(v, v).AsUInt16();
            *(uint*)(o + 4 * j) = Vector128.Narrow(v16, v16).AsUInt32().ToScalar();
        }
    }

    /// <summary>
    /// <see cref="HorizontalRgba"/> two taps at a time: 8 bytes (two RGBA pixels) widened to eight ints in one
    /// instruction and multiplied by their two weights (<paramref name="kx4"/>: each weight repeated 4 times); an odd
    /// last tap as before. Integer sums in another order: the same bytes.
    /// </summary>
    private static unsafe void HorizontalRgbaPairs(byte* line, byte* o, int outW, int* kx, int* kx4, int ksx, int* bx)
    {
        var half = Vector128.Create(Half);
        for (int j = 0; j < outW; j++)
        {
            int xmin = bx[2 * j], xn = bx[2 * j + 1];
            int* k = kx + j * ksx;
            int* k4 = kx4 + j * ksx * 4;
            byte* px = line + xmin * 4;
            var pair = Vector256<int>.Zero;
            int t = 0;
            for (; t + 2 <= xn; t += 2)
                pair += Avx2.ConvertToVector256Int32(px + 4 * t) * Avx.LoadVector256(k4 + 4 * t);
            var a = half + pair.GetLower() + pair.GetUpper();
            if (t < xn) a += Pixel(px + 4 * t) * Vector128.Create(k[t]);
            var v = Vector128.Clamp(Vector128.ShiftRightArithmetic(a, PrecisionBits), Vector128<int>.Zero, Vector128.Create(255));
            var v16 = Vector128.Narrow(v, v).AsUInt16();
            *(uint*)(o + 4 * j) = Vector128.Narrow(v16, v16).AsUInt32().ToScalar();
        }
    }

    /// <summary>Four bytes (one RGBA pixel) widened to four ints.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static unsafe Vector128<int> Pixel(byte* p)
        => Vector128.WidenLower(Vector128.WidenLower(Vector128.CreateScalarUnsafe(*(uint*)p).AsByte())).AsInt32();

    /// <summary>acc[x] = Half + sum_t rows[t][x] * k[t] over a whole intermediate row.</summary>
    private static unsafe void VerticalRow(byte* rows, int rowBytes, int taps, int* k, int* acc)
    {
        new Span<int>(acc, rowBytes).Fill(Half);
        for (int t = 0; t < taps; t++)
        {
            byte* row = rows + t * rowBytes;
            var kv = Vector128.Create(k[t]);
            int x = 0;
            for (; x + 16 <= rowBytes; x += 16)
            {
                var (lo, hi) = Vector128.Widen(Vector128.Load(row + x));
                var (a0, a1) = Vector128.Widen(lo);
                var (a2, a3) = Vector128.Widen(hi);
                int* d = acc + x;
                Vector128.Store(Vector128.Load(d) + a0.AsInt32() * kv, d);
                Vector128.Store(Vector128.Load(d + 4) + a1.AsInt32() * kv, d + 4);
                Vector128.Store(Vector128.Load(d + 8) + a2.AsInt32() * kv, d + 8);
                Vector128.Store(Vector128.Load(d + 12) + a3.AsInt32() * kv, d + 12);
            }
            int kt = k[t];
            for (; x < rowBytes; x++) acc[x] += row[x] * kt;
        }
    }

    /// <summary>torchvision center_crop: offset int(round((size - crop) / 2)) (Python's round half to even); negative = zero padding.</summary>
    private static int CropStart(int size, int crop)
        => crop > size ? -((crop - size) / 2) : (int)Math.Round((size - crop) / 2.0, MidpointRounding.ToEven);

    private const int PrecisionBits = 32 - 8 - 2;

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static byte Clip8(int v)
    {
        if (v >= 1 << (PrecisionBits + 8)) return 255;
        if (v <= 0) return 0;
        return (byte)(v >> PrecisionBits);
    }
}
