using System.Diagnostics;
using System.Text.Json;
using FeatureTransfer.Normalization;
using FeatureTransfer.Features;
using FeatureTransfer.Heads;
using FeatureTransfer.Reports;

// Head benchmark (issue 11, "Performance"): train + evaluate a head on extracted features and compare with
// scikit-learn's LinearSVC (Debian python3-sklearn) on the very same normalized matrix.
// Usage: dotnet run --project benchmarks/Heads -c Release -- TRAIN_FEATURES (TEST_FEATURES | --holdout 0.2) [--norm fne] [--head svm] [--rows 10000]
if (args.Length < 2)
{
    Console.Error.WriteLine("usage: HeadsBenchmark TRAIN_FEATURES (TEST_FEATURES | --holdout 0.2) [--norm fne] [--head svm] [--rows N] [--l2 X] [--iterations N] [--c C] [--svm-solver sdca|pegasos]");
    return 2;
}
string Arg(string name, string def) => Array.IndexOf(args, name) is var i and >= 0 && i + 1 < args.Length ? args[i + 1] : def;
var norm = NormRecipes.Parse(Arg("--norm", "fne"));
var kind = HeadKinds.Parse(Arg("--head", "svm"));
int rows = int.Parse(Arg("--rows", "10000"), System.Globalization.CultureInfo.InvariantCulture);
float? l2 = args.Contains("--l2") ? float.Parse(Arg("--l2", "0.001"), System.Globalization.CultureInfo.InvariantCulture) : null;
string c = Arg("--c", "1.0");
var svmSolver = args.Contains("--svm-solver") ? Enum.Parse<SvmSolver>(Arg("--svm-solver", "sdca"), ignoreCase: true) : new HeadOptions().SvmSolver;
int? iterations = args.Contains("--iterations") ? int.Parse(Arg("--iterations", "10"), System.Globalization.CultureInfo.InvariantCulture) : null;

var load = Stopwatch.StartNew();
var train = FeatureFiles.Read(args[0]);
FeatureTable test;
if (args[1] == "--holdout")
{
    // One feature file: hold out a stratified fraction of its rows as the test set.
    double fraction = double.Parse(args[2], System.Globalization.CultureInfo.InvariantCulture);
    var (_, yAll) = HeadTrainer.Classes(train);
    var fold = StratifiedKFold.Assign(yAll, (int)Math.Round(1 / fraction), seed: 0);
    test = train.SelectRows(Enumerable.Range(0, train.Rows).Where(i => fold[i] == 0).ToList());
    train = train.SelectRows(Enumerable.Range(0, train.Rows).Where(i => fold[i] != 0).ToList());
}
else test = FeatureFiles.Read(args[1]);
if (train.Rows > rows) train = new FeatureSelection(PerClass: rows / train.Labels.Distinct().Count(), Seed: 0).Apply(train, args[0]);
load.Stop();
Console.WriteLine($"features: {train.Rows:N0} train x {train.Dimension:N0} dims ({train.Layout.Summary()}), {test.Rows:N0} test; loaded in {load.Elapsed.TotalSeconds:F1} s");

var fit = Stopwatch.StartNew();
var head = HeadTrainer.Train(train, norm, new HeadOptions { Kind = kind, L2 = l2, Iterations = iterations, SvmSolver = svmSolver });
fit.Stop();
var eval = Stopwatch.StartNew();
var predictions = head.Predict(test);
var result = Evaluation.Evaluate(test.Labels, predictions);
eval.Stop();
Console.WriteLine($"FeatureTransfer {HeadKinds.Name(kind)} ({string.Join(' ', new HeadOptions { Kind = kind, L2 = l2, Iterations = iterations, SvmSolver = svmSolver }.Describe().Select(kv => $"{kv.Key}={kv.Value}"))}) on {NormRecipes.Name(norm)}: fit (normalization + head) {fit.Elapsed.TotalSeconds:F2} s, " +
                  $"evaluate {eval.Elapsed.TotalSeconds:F2} s, accuracy {result.Accuracy:F4}");

// The same normalized matrices for scikit-learn (normalization is not part of its timing: it gets the normalized rows).
var dir = Path.Combine(Path.GetTempPath(), "ft-heads-bench");
Directory.CreateDirectory(dir);
var ntrain = head.Normalization.Apply(train);
var ntest = head.Normalization.Apply(test);
FeatureFiles.Write(Path.Combine(dir, "train.npy"), ntrain);
FeatureFiles.Write(Path.Combine(dir, "test.npy"), ntest);
var headOnly = Stopwatch.StartNew();
HeadTrainer.Train(ntrain, NormRecipe.None, new HeadOptions { Kind = kind, L2 = l2, Iterations = iterations, SvmSolver = svmSolver });
headOnly.Stop();
Console.WriteLine($"FeatureTransfer head alone on the normalized matrix: fit {headOnly.Elapsed.TotalSeconds:F2} s");

var psi = new ProcessStartInfo("/usr/bin/python3") { RedirectStandardOutput = true };
psi.ArgumentList.Add(Path.Combine(AppContext.BaseDirectory, "sklearn_linearsvc.py"));
psi.ArgumentList.Add(Path.Combine(dir, "train.npy"));
psi.ArgumentList.Add(Path.Combine(dir, "test.npy"));
psi.ArgumentList.Add(c);
using var p = Process.Start(psi)!;
var line = p.StandardOutput.ReadToEnd();
p.WaitForExit();
if (p.ExitCode != 0) { Console.Error.WriteLine("scikit-learn run failed"); return 1; }
using var doc = JsonDocument.Parse(line);
double skFit = doc.RootElement.GetProperty("fit_s").GetDouble(), skPred = doc.RootElement.GetProperty("predict_s").GetDouble();
double skAcc = doc.RootElement.GetProperty("accuracy").GetDouble();
Console.WriteLine($"scikit-learn LinearSVC(C={c}) on the same matrix: fit {skFit:F2} s, predict {skPred:F2} s, accuracy {skAcc:F4}");
Console.WriteLine($"ratio time (FeatureTransfer head alone fit / sklearn fit): {headOnly.Elapsed.TotalSeconds / skFit:F2}x; accuracy difference {(result.Accuracy - skAcc) * 100:+0.00;-0.00} points");
return 0;
