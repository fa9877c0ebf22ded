using FeatureTransfer.Benchmarks;

// Benchmarks compare side by side in one run (ratios), since these machines are noisy.
//   extract [--images 1000] [--rounds 3] [--models resnet18,mobilenet_v2] [--batch 32] [--threads 2]
//           [--methods a,b,c,cp,d,d2,e]  (also a-pipelined, b-phased, a-run0, a-pipelined-run0, c-run4, cs, cw, cs-run4, decode)
//           [--memory yes|no] [--schedule workers|pipelined|phased] [--run-size 4]   (the last two: memory children only)
//   stages  [--images 200] [--model mobilenet_v2] [--layers bottleneck] [--batch 32] [--threads 2] [--rounds 1] [--share yes|no] [--first-run yes] [--tensorize-reps 50]
//           (ms per image of each stage of ft extract: one thread, then the worker loop with timers, then ft (a) and (c'))
//   memory  --model M.onnx --data DIR --layers L          (child-process mode: prints peak_mb)
//   graph   [--arch mobilenet_v2 | --model M.onnx] [--layers bottleneck,fne]   (op counts of ORT's optimized tapped graphs)
//   runsize [--arch mobilenet_v2] [--sizes 1,2,4,8,32] [--layers bottleneck,fne] [--threads 1]   (cost per image by images per Run)
//   soak    [--images 50000] [--model default]            (throughput and memory stay flat over a long run)
//   gpu     probe | compare A B | train-step --model M    (benchmarks/gpu/check.sh: CUDA status, CPU/CUDA feature parity, step time)
return args.FirstOrDefault() switch
{
    "extract" => await ExtractBenchmark.RunAsync(args[1..]),
    "stages" => await StagesBenchmark.RunAsync(args[1..]),
    "memory" => await ExtractBenchmark.MemoryChildAsync(args[1..]),
    "soak" => await SoakBenchmark.RunAsync(args[1..]),
    "graph" => GraphDump.Run(args[1..]),
    "runsize" => RunSizeBenchmark.Run(args[1..]),
    "tapcost" => TapCostBenchmark.Run(args[1..]),
    "gpu" => GpuCheck.Run(args[1..]),
    _ => Usage(),
};

static int Usage()
{
    Console.Error.WriteLine("usage: FeatureTransfer.Benchmarks extract|memory|soak [options] (see benchmarks/README.md)");
    return 2;
}
