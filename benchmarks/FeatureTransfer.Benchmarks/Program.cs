using FeatureTransfer.Benchmarks;

// Benchmarks compare side by side in one run (ratios), since these machines are noisy.
//   extract [--images 1000] [--rounds 3] [--models resnet18,mobilenet_v2] [--batch 32] [--threads 2]
//   memory  --model M.onnx --data DIR --layers L          (child-process mode: prints peak_mb)
//   soak    [--images 50000] [--model default]            (throughput and memory stay flat over a long run)
return args.FirstOrDefault() switch
{
    "extract" => await ExtractBenchmark.RunAsync(args[1..]),
    "memory" => await ExtractBenchmark.MemoryChildAsync(args[1..]),
    "soak" => await SoakBenchmark.RunAsync(args[1..]),
    _ => Usage(),
};

static int Usage()
{
    Console.Error.WriteLine("usage: FeatureTransfer.Benchmarks extract|memory|soak [options] (see benchmarks/README.md)");
    return 2;
}
