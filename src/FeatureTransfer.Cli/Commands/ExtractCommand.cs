using System.CommandLine;
using FeatureTransfer.Data;
using FeatureTransfer.Extraction;
using FeatureTransfer.Features;
using FeatureTransfer.Onnx.Tapping;

namespace FeatureTransfer.Cli.Commands;

/// <summary><c>ft extract</c>: backbone features of every image of a dataset, as a resumable, shardable batch job.</summary>
[CliCommand(20)]
internal static class ExtractCommand
{
    public static Command Create()
    {
        var model = new Option<string?>("--model", "-m") { Description = "ONNX backbone (default: the models.json default)" };
        var data = new Option<string>("--data", "-d") { Description = "Images: class folders, a flat folder, a CSV manifest (path,label[,split]) or idx:<dir>[:t10k]", Required = true };
        var layers = new Option<string>("--layers", "-l") { Description = "bottleneck | fne | tensor1,tensor2,...", DefaultValueFactory = _ => "bottleneck" };
        var output = new Option<string>("--out", "-o") { Description = "Feature file: .csv, .parquet or .npy (+ .meta.json)", Required = true };
        var pool = new Option<string>("--pool") { Description = "Spatial pooling of conv maps: avg | max", DefaultValueFactory = _ => "avg" };
        var batch = new Option<int>("--batch") { Description = "Images per ONNX Runtime call (also fixes batch boundaries for resume/shards)", DefaultValueFactory = _ => 32 };
        var threads = new Option<int>("--threads") { Description = "Cores to use (0 = all): workers that each decode and run their own batch on one ONNX Runtime thread; with --schedule pipelined|phased, ONNX Runtime threads", DefaultValueFactory = _ => 0 };
        var decodeThreads = new Option<int>("--decode-threads") { Description = "Image decoding threads of --schedule pipelined|phased (0 = one per core)", DefaultValueFactory = _ => 0 };
        var schedule = new Option<string>("--schedule") { Description = "workers (default; on CUDA: pipelined) | pipelined (decode the next batch while ONNX Runtime runs one) | phased (decode, then run)", DefaultValueFactory = _ => "workers" };
        var runSize = new Option<int>("--run-size") { Description = "Images per ONNX Runtime call inside a batch (0 = the whole batch)", DefaultValueFactory = _ => ExtractorOptions.DefaultRunSize };
        var device = new Option<string>("--device") { Description = "cpu | cuda | auto", DefaultValueFactory = _ => "cpu" };
        var limit = new Option<int?>("--limit") { Description = "Only the first N inputs (sorted order)" };
        var shard = new Option<string?>("--shard") { Description = "k/N: extract shard k of N (0-based), or 'auto' from SLURM_ARRAY_* / JOB_COMPLETION_INDEX" };
        var shardCount = new Option<int?>("--shard-count") { Description = "N for --shard auto under a Kubernetes Indexed Job" };
        var resume = new Option<bool>("--resume") { Description = "Continue an interrupted job (the default whenever its checkpoints exist)" };
        var restart = new Option<bool>("--restart") { Description = "Discard checkpoints of an interrupted job and start over" };
        var exactQuant = new Option<bool>("--exact-quantized") { Description = "Dequantize quantized maps before pooling (exact) instead of pooling in int8 first" };
        var checkpoint = new Option<int>("--checkpoint-batches") { Description = "Batches per checkpoint chunk", DefaultValueFactory = _ => 8 };

        var cmd = new Command("extract", "Extract bottleneck or Full-Network-Embedding features of every image into a feature file")
        {
            model, data, layers, output, pool, batch, threads, decodeThreads, schedule, runSize, device, limit, shard, shardCount, resume, restart, exactQuant, checkpoint,
        };
        var pre = PreprocessingOptions.AddTo(cmd);
        var dataOptions = DataOptions.AddTo(cmd);
        cmd.SetAction((r, ct) => CliRunner.RunAsync(async token =>
        {
            var modelPath = ModelOption.Resolve(r.GetValue(model));
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
                Device = SessionFactory.ParseDevice(r.GetValue(device)!),
                Threads = r.GetValue(threads),
                Schedule = Enum.TryParse<ExtractionSchedule>(r.GetValue(schedule), ignoreCase: true, out var sch) && !int.TryParse(r.GetValue(schedule), out _) ? sch
                    : throw new InvalidOptionException($"--schedule must be workers, pipelined or phased, not '{r.GetValue(schedule)}'"),
                RunSize = r.GetValue(runSize) >= 0 ? r.GetValue(runSize) : throw new InvalidOptionException("--run-size must be 0 (whole batch) or more"),
                Preprocessing = pre.Read(r, modelPath),
                Tensorizer = pre.Decoder(r),
            };
            var outPath = r.GetValue(output)!;
            FeatureFiles.FormatOf(outPath); // a bad extension is a usage error, before any job folder is made
            // First the job's lock, so a second run on this output is refused at once, not after loading the model.
            using var jobLock = ExtractionJobLock.Acquire(outPath);
            var job = new ExtractionJobOptions
            {
                Lock = jobLock,
                BatchSize = r.GetValue(batch),
                DecodeThreads = r.GetValue(decodeThreads),
                Limit = r.GetValue(limit),
                Shard = ShardOption.Resolve(r.GetValue(shard), r.GetValue(shardCount)),
                CheckpointBatches = r.GetValue(checkpoint),
                Restart = r.GetValue(restart),
            };
            var dataset = DatasetLoader.Open(r.GetValue(data)!, dataOptions.Read(r));
            using var extractor = FeatureExtractor.Load(modelPath, options);
            foreach (var note in extractor.Notes) CliRunner.Info(note);
            if (job.Shard is not null) CliRunner.Info($"shard: {job.Shard.Describe}");
            CliRunner.Info($"extracting {extractor.Layout.Summary()} from {dataset.Items.Count:N0} inputs of {dataset.Source} with {extractor.ModelName}");
            var summary = await ProgressDisplay.RunAsync("extract", (progress, c) => extractor.ExtractToFileAsync(dataset, outPath, job, progress, c), token);
            foreach (var note in summary.Notes.Except(extractor.Notes)) CliRunner.Info(note);
            CliRunner.Info($"wrote {summary.Rows:N0} rows to {summary.OutputPath} in {summary.Elapsed.TotalSeconds:F1} s" +
                (summary.ResumedRows > 0 ? $" ({summary.ResumedRows:N0} resumed from checkpoints)" : ""));
            if (summary.Skipped > 0)
                CliRunner.Warn($"skipped {summary.Skipped:N0} inputs; reasons in {summary.ErrorsPath}");
            return summary.ExitCode;
        }, ct));
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
        cmd.SetAction((r, ct) => CliRunner.RunAsync(token =>
        {
            var summary = ShardMerge.Merge(r.GetValue(parts)!, r.GetValue(output)!, cancellationToken: token);
            CliRunner.Info($"merged {r.GetValue(parts)!.Length} shards: {summary.Rows:N0} rows into {summary.OutputPath}");
            if (summary.Skipped > 0) CliRunner.Warn($"{summary.Skipped:N0} inputs were skipped by the shards; reasons in {summary.ErrorsPath}");
            return Task.FromResult(summary.ExitCode);
        }, ct));
        return cmd;
    }
}
