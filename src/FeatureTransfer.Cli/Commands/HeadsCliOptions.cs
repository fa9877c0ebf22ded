using System.CommandLine;
using FeatureTransfer.Cli.Options;
using FeatureTransfer.Features;
using FeatureTransfer.Heads;
using FeatureTransfer.Normalization;

namespace FeatureTransfer.Cli.Commands;

/// <summary>Options shared by the head commands (train, evaluate, transform, run, probe, bench).</summary>
internal sealed class DataSelectionOptions
{
    public Option<string?> Classes { get; } = new("--classes") { Description = "Keep only these classes (comma-separated)" };
    public Option<int?> PerClass { get; } = new Option<int?>("--per-class") { Description = "Stratified sample of N rows per class" }.Must(NumberRule.Positive);
    public Option<int> Seed { get; } = new Option<int>("--seed") { Description = "Seed of the sample and of cross-validation folds", DefaultValueFactory = _ => 0 }.Must(NumberRule.Any);

    public void AddTo(Command c)
    {
        c.Options.Add(Classes);
        c.Options.Add(PerClass);
        c.Options.Add(Seed);
    }

    public FeatureSelection Get(ParseResult r)
        => new(FeatureSelection.ParseClasses(r.GetValue(Classes)), r.GetValue(PerClass), r.GetValue(Seed));
}

/// <summary>Normalization options: recipe and discretization thresholds.</summary>
internal sealed class NormCliOptions(string defaultRecipe)
{
    public Option<string> Recipe { get; } = new("--norm")
    {
        Description = "Normalization: none, l2, standardize, fne (standardize + discretize), l2+fne",
        DefaultValueFactory = _ => defaultRecipe,
    };

    public Option<float> Low { get; } = new Option<float>("--low-threshold") { Description = "FNE: z below this -> -1", DefaultValueFactory = _ => -0.25f }.Must(NumberRule.Any);
    public Option<float> High { get; } = new Option<float>("--high-threshold") { Description = "FNE: z above this -> 1", DefaultValueFactory = _ => 0.15f }.Must(NumberRule.Any);

    public void AddTo(Command c)
    {
        c.Options.Add(Recipe);
        c.Options.Add(Low);
        c.Options.Add(High);
    }

    public NormRecipe GetRecipe(ParseResult r) => NormRecipes.Parse(r.GetValue(Recipe)!);

    public NormalizationOptions GetOptions(ParseResult r)
    {
        float low = r.GetValue(Low), high = r.GetValue(High);
        if (low > high) throw new InvalidOptionException($"--low-threshold ({low}) must not be above --high-threshold ({high})");
        return new() { LowThreshold = low, HighThreshold = high };
    }
}

/// <summary>Head hyper-parameters.</summary>
internal sealed class HeadCliOptions
{
    public Option<string> Head { get; } = new("--head") { Description = "svm, logreg, fasttree or lightgbm", DefaultValueFactory = _ => "svm" };
    public Option<float?> L2 { get; } = new Option<float?>("--l2") { Description = "L2 strength (svm lambda, default 1e-3; logreg, default 1e-4)" }.Must(NumberRule.Positive);
    public Option<int?> Iterations { get; } = new Option<int?>("--iterations") { Description = "svm epochs (default 30) / logreg passes" }.Must(NumberRule.Positive);
    public Option<string> Solver { get; } = new("--solver") { Description = "logreg solver: lbfgs or sdca", DefaultValueFactory = _ => "lbfgs" };
    public Option<string?> SvmSolver { get; } = NewSvmSolverOption();

    /// <summary>The <c>--svm-solver</c> option (ft train, run, demo, bench, probe).</summary>
    public static Option<string?> NewSvmSolverOption() => new("--svm-solver")
    {
        Description = "svm solver: auto (default: sdca up to 1,024 features and 2^24 rows x features, else pegasos), " +
                      "sdca (hinge-loss dual coordinate ascent, exact optimum) or pegasos (ML.NET LinearSvm, stochastic)",
    };

    /// <summary>Parses a <c>--svm-solver</c> value (null: the default).</summary>
    public static SvmSolver ParseSvmSolver(string? value) => value?.Trim().ToLowerInvariant() switch
    {
        null => new HeadOptions().SvmSolver,
        "auto" => FeatureTransfer.Heads.SvmSolver.Auto,
        "sdca" => FeatureTransfer.Heads.SvmSolver.Sdca,
        "pegasos" => FeatureTransfer.Heads.SvmSolver.Pegasos,
        var s => throw new InvalidOptionException($"--svm-solver must be auto, sdca or pegasos, not '{s}'"),
    };
    public Option<int> Trees { get; } = new Option<int>("--trees") { Description = "fasttree/lightgbm trees", DefaultValueFactory = _ => 100 }.Must(NumberRule.Positive);
    public Option<int> Leaves { get; } = new Option<int>("--leaves") { Description = "fasttree/lightgbm leaves per tree", DefaultValueFactory = _ => 20 }.Must(NumberRule.AtLeast(2));
    public Option<int> MinLeafRows { get; } = new Option<int>("--min-leaf-rows") { Description = "fasttree/lightgbm minimum rows per leaf", DefaultValueFactory = _ => 10 }.Must(NumberRule.Positive);
    public Option<double?> LearningRate { get; } = new Option<double?>("--learning-rate") { Description = "fasttree (0.2) / lightgbm (0.1) learning rate" }.Must(NumberRule.Positive);
    public Option<int> Cv { get; } = new Option<int>("--cv") { Description = "Folds of stratified CV to choose --l2 when not given (0: no CV)", DefaultValueFactory = _ => 0 }.Must(NumberRule.ZeroOrAtLeast(2));

    public void AddTo(Command c, bool withHead = true)
    {
        if (withHead) c.Options.Add(Head);
        foreach (var o in new Option[] { L2, Iterations, Solver, SvmSolver, Trees, Leaves, MinLeafRows, LearningRate, Cv }) c.Options.Add(o);
    }

    public HeadOptions Get(ParseResult r, int seed)
    {
        var solver = r.GetValue(Solver)!.ToLowerInvariant() switch
        {
            "sdca" => LogRegSolver.Sdca,
            "lbfgs" => LogRegSolver.Lbfgs,
            var s => throw new InvalidOptionException($"--solver must be sdca or lbfgs, not '{s}'"),
        };
        var svmSolver = ParseSvmSolver(r.GetValue(SvmSolver));
        return new HeadOptions
        {
            SvmSolver = svmSolver,
            Kind = HeadKinds.Parse(r.GetValue(Head)!),
            L2 = r.GetValue(L2),
            Iterations = r.GetValue(Iterations),
            Solver = solver,
            Trees = r.GetValue(Trees),
            Leaves = r.GetValue(Leaves),
            MinLeafRows = r.GetValue(MinLeafRows),
            LearningRate = r.GetValue(LearningRate),
            CvFolds = r.GetValue(Cv),
            Seed = seed,
        };
    }
}
