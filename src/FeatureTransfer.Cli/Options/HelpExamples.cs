using System.CommandLine;
using System.CommandLine.Help;
using System.CommandLine.Invocation;

namespace FeatureTransfer.Cli.Options;

/// <summary>
/// One worked example per command, printed under System.CommandLine's help (its help builder is not public in
/// 3.0, so the built-in help action runs first and this appends a section), and the exit codes under <c>ft --help</c>.
/// Kept in one table so that adding an example never touches a command's file.
/// </summary>
internal static class HelpExamples
{
    /// <summary>Command path after <c>ft</c> -> example command lines (runnable from the repository root).</summary>
    public static IReadOnlyDictionary<string, string[]> ByCommand { get; } = new Dictionary<string, string[]>(StringComparer.Ordinal)
    {
        ["demo"] = ["ft demo --out ft-demo"],
        ["inspect"] = ["ft inspect ../shared/models/mobilenetv2-12-int8.onnx"],
        ["models list"] = ["ft models list"],
        ["models fetch"] = ["ft models fetch resnet50-v2-7"],
        ["models add"] = ["ft models add my-resnet18 resnet18.onnx --preprocessing imagenet"],
        ["data list"] = ["ft data list --data ../shared/datasets/hymenoptera_data --split train"],
        ["data check"] = ["ft data check --data ../shared/datasets/hymenoptera_data --model mobilenetv2-12-int8"],
        ["extract"] = ["ft extract -m ../shared/models/mobilenetv2-12-int8.onnx -d ../shared/datasets/hymenoptera_data/train --layers fne -o train.parquet"],
        ["quantize"] = ["ft quantize -m ../shared/models/derived/SqueezeNet_fp32_from_fp16.onnx --calibrate ../shared/datasets/hymenoptera_data/train -o squeezenet-int8.onnx"],
        ["merge"] = ["ft merge part-0.parquet part-1.parquet -o all.parquet"],
        ["predict"] = ["ft predict -m ../shared/models/mobilenetv2-12-int8.onnx -d ../shared/datasets/hymenoptera_data/val --imagenet-top5"],
        ["run"] = ["ft run -m ../shared/models/mobilenetv2-12-int8.onnx --train ../shared/datasets/hymenoptera_data/train --test ../shared/datasets/hymenoptera_data/val -o runs/ants-bees"],
        ["probe"] = ["ft probe -m ../shared/models/mobilenetv2-12-int8.onnx --train ../shared/datasets/hymenoptera_data/train --test ../shared/datasets/hymenoptera_data/val -o probe/"],
        ["bench"] = ["ft bench --models fashion-source,squeezenet1.1-fp16 --train samples/fashion-mnist/train --test samples/fashion-mnist/test -o bench/"],
        ["train"] = ["ft train --features train.parquet --norm fne --head svm -o head.ftm"],
        ["evaluate"] = ["ft evaluate --head head.ftm --features val.parquet -o report/"],
        ["export"] = ["ft export --head runs/ants-bees/head.ftm -o ants-bees.onnx --with-preprocessing"],
        ["transform"] = ["ft transform --head head.ftm --features val.parquet -o val-embedding.csv"],
        ["finetune"] = ["ft finetune -m ../shared/models/derived/SqueezeNet_fp32_from_fp16.onnx --train ../shared/datasets/hymenoptera_data/train --unfreeze 2 --epochs 6 -o ants-bees-finetuned.onnx"],
        ["train-backbone"] = ["ft train-backbone --epochs 3 -o fashion-source.onnx"],
    };

    /// <summary>The exit codes of every command, as <c>ft --help</c> and README list them.</summary>
    public static IReadOnlyList<(int Code, string Meaning)> ExitCodeMeanings { get; } =
    [
        (ExitCodes.Success, "success"),
        (ExitCodes.Failure, "failure: nothing was written (unreadable input, model that cannot run, ...)"),
        (ExitCodes.Usage, "usage error: unknown command or option, bad or contradictory values, unknown layer name"),
        (ExitCodes.CompletedWithSkippedInputs, "completed, but some inputs were skipped (see the errors file or the warnings)"),
        (ExitCodes.Cancelled, "cancelled with Ctrl-C (work done so far is kept where the command says so)"),
    ];

    public static string PathOf(Command command) => UsageLine.CommandPath(command) is var p && p.Length > 3 ? p[3..] : "";

    public static void Write(Command command, TextWriter output)
    {
        if (command is RootCommand)
        {
            output.WriteLine("Exit codes:");
            foreach (var (code, meaning) in ExitCodeMeanings) output.WriteLine($"  {code,-5}{meaning}");
            output.WriteLine();
            output.WriteLine("Run 'ft COMMAND --help' for a command's options and an example.");
            output.WriteLine();
            return;
        }
        if (!ByCommand.TryGetValue(PathOf(command), out var examples)) return;
        output.WriteLine("Example:");
        foreach (var e in examples) output.WriteLine($"  {e}");
        output.WriteLine();
    }
}

/// <summary>System.CommandLine's help, then <see cref="HelpExamples"/>.</summary>
internal sealed class HelpWithExamplesAction(HelpAction builtIn) : SynchronousCommandLineAction
{
    public override bool ClearsParseErrors => true;

    public override int Invoke(ParseResult parseResult)
    {
        int code = builtIn.Invoke(parseResult);
        HelpExamples.Write(parseResult.CommandResult.Command, parseResult.InvocationConfiguration.Output);
        return code;
    }
}
