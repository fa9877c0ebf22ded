using System.CommandLine;
using FeatureTransfer.Cli.Options;
using FeatureTransfer.Data;
using FeatureTransfer.Extraction;
using FeatureTransfer.Features;
using FeatureTransfer.Onnx.Runtime;
using FeatureTransfer.Onnx.Tapping;

namespace FeatureTransfer.Cli.Commands;

/// <summary><c>ft extract</c>: backbone features of every image of a dataset, as a resumable, shardable batch job.</summary>
[CliCommand(20)]
internal static class ExtractCommand
{
    /// <summary>Default batch on CUDA: enough images per call to keep a GPU busy, small enough for a few GB of GPU memory.</summary>
    private const int CudaBatch = 128;

    public static Command Create()
    {
        var model = new Option<string?>("--model", "-m") { Description = "ONNX backbone (default: the models.json default)" };
        var data = new Option<string>("--data", "-d") { Description = "Images: class folders, a flat folder, a CSV manifest (path,label[,split]) or idx:<dir>[:t10k]", Required = true };
        var layers = new Option<string>("--layers", "-l") { Description = "bottleneck | fne | layer names, comma-separated: tensor, node or module path (layer4.1.relu_1) as ft inspect lists them", DefaultValueFactory = _ => "bottleneck" };
        var output = new Option<string>("--out", "-o") { Description = "Feature file: .csv, .parquet or .npy (+ .meta.json)", Required = true };
        var pool = new Option<string>("--pool") { Description = "Spatial pooling of conv maps: avg | max", DefaultValueFactory = _ => "avg" };
        var batch = new Option<int>("--batch") { Description = $"Images per batch (also fixes batch boundaries for resume/shards; default 32, on CUDA {CudaBatch})", DefaultValueFactory = _ => 32 }.Must(NumberRule.Positive);
        var threads = new Option<int>("--threads") { Description = "Cores to use (0 = all cores): workers that each decode and run their own batch on one ONNX Runtime thread; with --schedule pipelined|phased, ONNX Runtime threads", DefaultValueFactory = _ => 0 }.Must(NumberRule.NonNegative);
        var decodeThreads = new Option<int>("--decode-threads") { Description = "Image decoding threads of --schedule pipelined|phased (0 = one per core)", DefaultValueFactory = _ => 0 }.Must(NumberRule.NonNegative);
        var schedule = new Option<string>("--schedule") { Description = "workers (default; on CUDA: pipelined) | pipelined (decode the next batch while ONNX Runtime runs one) | phased (decode, then run)", DefaultValueFactory = _ => "workers" };
        var runSize = new Option<int>("--run-size") { Description = $"Images per ONNX Runtime call inside a batch (0 = the whole batch; default {ExtractorOptions.DefaultRunSize}, on CUDA 0)", DefaultValueFactory = _ => ExtractorOptions.DefaultRunSize }.Must(NumberRule.NonNegative);
        var ioBinding = new Option<string>("--io-binding") { Description = "auto (on for CUDA) | on | off: ONNX Runtime IOBinding with buffers bound once per run shape", DefaultValueFactory = _ => "auto" };
        var device = new Option<string>("--device") { Description = "cpu | cuda (fails, naming what is missing, without CUDA) | auto (CUDA when present, else CPU)", DefaultValueFactory = _ => "cpu" };
        var tf32 = new Option<bool>("--tf32") { Description = "CUDA only: TF32 matrix products (false: features agree with the CPU's to float32 rounding)", DefaultValueFactory = _ => true };
        var limit = new Option<int?>("--limit") { Description = "Only the first N inputs (sorted order)" }.Must(NumberRule.Positive);
        var shard = new Option<string?>("--shard") { Description = "k/N: extract shard k of N (0-based), or 'auto' from SLURM_ARRAY_* / JOB_COMPLETION_INDEX" };
        var shardCount = new Option<int?>("--shard-count") { Description = "N for --shard auto under a Kubernetes Indexed Job" }.Must(NumberRule.Positive);
        var resume = new Option<bool>("--resume") { Description = "Continue an interrupted job (the default whenever its checkpoints exist)" };
        var restart = new Option<bool>("--restart") { Description = "Discard checkpoints of an interrupted job and start over" };
        var exactQuant = new Option<bool>("--exact-quantized") { Description = "Dequantize quantized maps before pooling (exact) instead of pooling in int8 first" };
        var checkpoint = new Option<int>("--checkpoint-batches") { Description = "Batches per checkpoint chunk", DefaultValueFactory = _ => 8 }.Must(NumberRule.Positive);

        var cmd = new Command("extract", "Extract bottleneck or Full-Network-Embedding features of every image into a feature file")
        {
            model, data, layers, output, pool, batch, threads, decodeThreads, schedule, runSize, ioBinding, device, tf32, limit, shard, shardCount, resume, restart, exactQuant, checkpoint,
        };
        cmd.Exclusive(resume, restart, "--resume continues the checkpoints, --restart discards them");
        var pre = PreprocessingOptions.AddTo(cmd);
        var dataOptions = DataOptions.AddTo(cmd);
        cmd.SetAction((r, cancellationToken) => CliRunner.RunAsync(async token =>
        {
            var modelPath = ModelOption.Resolve(r.GetValue(model));
            // A GPU wants whole batches in one call and larger batches than the CPU's defaults (kept when given).
            bool cuda = OrtSessionFactory.ResolveDevice(DeviceOption.Parse(r.GetValue(device)!)).Device == Device.Cuda;
            int? Given(Option<int> o) => r.GetResult(o) is { Implicit: false } ? r.GetValue(o) : null;
            var options = new ExtractorOptions
            {
                Layers = r.GetValue(layers)!,
                Pooling = r.GetValue(pool) switch
                {
                    "avg" => Pooling.Avg,
                    "max" => Pooling.Max,
                    var p => throw new InvalidOptionException($"--pool must be avg or max, not '{p}'"),
                },
                ExactQuantized = r.GetValue(exactQuant),
                Device = DeviceOption.Parse(r.GetValue(device)!),
                CudaTf32 = r.GetValue(tf32),
                Threads = r.GetValue(threads),
                Schedule = Enum.TryParse<ExtractionSchedule>(r.GetValue(schedule), ignoreCase: true, out var sch) && !int.TryParse(r.GetValue(schedule), out _) ? sch
                    : throw new InvalidOptionException($"--schedule must be workers, pipelined or phased, not '{r.GetValue(schedule)}'"),
                RunSize = (Given(runSize) ?? (cuda ? 0 : ExtractorOptions.DefaultRunSize)) is var rs && rs >= 0 ? rs
                    : throw new InvalidOptionException("--run-size must be 0 (whole batch) or more"),
                IoBinding = r.GetValue(ioBinding) switch
                {
                    "auto" => null,
                    "on" => true,
                    "off" => false,
                    var b => throw new InvalidOptionException($"--io-binding must be auto, on or off, not '{b}'"),
                },
                PreprocessingRequest = pre.Read(r),
                Tensorizer = pre.Decoder(r),
            };
            var outPath = r.GetValue(output)!;
            FeatureFiles.FormatOf(outPath); // a bad extension is a usage error, before any job folder is made
            // First the job's lock, so a second run on this output is refused at once, not after loading the model.
            using var jobLock = ExtractionJobLock.Acquire(outPath);
            var job = new ExtractionJobOptions
            {
                Lock = jobLock,
                BatchSize = Given(batch) ?? (cuda ? CudaBatch : 32),
                DecodeThreads = r.GetValue(decodeThreads),
                Limit = r.GetValue(limit),
                Shard = ShardOption.Resolve(r.GetValue(shard), r.GetValue(shardCount)),
                CheckpointBatches = r.GetValue(checkpoint),
                Restart = r.GetValue(restart),
            };
            var dataset = DatasetLoader.Open(r.GetValue(data)!, dataOptions.Read(r)).RequireItems(r.GetValue(data)!);
            using var extractor = FeatureExtractor.Load(modelPath, options);
            foreach (var note in extractor.Notes) CliRunner.Info(note);
            if (job.Shard is not null) CliRunner.Info($"shard: {job.Shard.Describe}");
            CliRunner.Info($"extracting {extractor.Layout.Summary()} from {dataset.Items.Count:N0} inputs of {dataset.Source} with {extractor.ModelName}");
            CliRunner.Info($"preprocessing: {extractor.Preprocessing.Describe()} (from {extractor.PreprocessingSource})");
            foreach (var w in extractor.PreprocessingWarnings) CliRunner.Warn(w);
            var summary = await ProgressDisplay.RunAsync("extract", (progress, c) => extractor.ExtractToFileAsync(dataset, outPath, job, progress, c), token);
            foreach (var note in summary.Notes.Except(extractor.Notes)) CliRunner.Info(note);
            CliRunner.Info($"wrote {summary.Rows:N0} rows to {summary.OutputPath} in {summary.Elapsed.TotalSeconds:F2} s" +
                (summary.ResumedRows > 0 ? $" ({summary.ResumedRows:N0} resumed from checkpoints)" : ""));
            if (summary.Skipped > 0)
                CliRunner.Warn($"skipped {summary.Skipped:N0} inputs; reasons in {summary.ErrorsPath}");
            return ExitCodes.For(summary);
        }, cancellationToken));
        return cmd;
    }
}

/// <summary><c>ft merge</c>: shard outputs into the file a single process would have written.</summary>
[CliCommand(25)]
internal static class MergeCommand
{
    public static Command Create()
    {
        var parts = new Argument<string[]>("parts") { Description = "Shard outputs of the same job (k/N each)", Arity = ArgumentArity.OneOrMore };
        var output = new Option<string>("--out", "-o") { Description = "Merged feature file", Required = true };
        var cmd = new Command("merge", "Combine the outputs of --shard k/N runs into one feature file") { parts, output };
        cmd.SetAction((r, cancellationToken) => CliRunner.RunAsync(token =>
        {
            var summary = ShardMerge.Merge(r.GetValue(parts)!, r.GetValue(output)!, cancellationToken: token);
            CliRunner.Info($"merged {r.GetValue(parts)!.Length} shards: {summary.Rows:N0} rows into {summary.OutputPath}");
            if (summary.Skipped > 0) CliRunner.Warn($"{summary.Skipped:N0} inputs were skipped by the shards; reasons in {summary.ErrorsPath}");
            return Task.FromResult(ExitCodes.For(summary));
        }, cancellationToken));
        return cmd;
    }
}
