namespace FeatureTransfer.FineTune;

/// <summary>Learning-rate schedules computed in C# and fed to the training graph each step.</summary>
internal abstract record LearningRateSchedule
{
    /// <summary>Multiplier of the base learning rate at 0-based <paramref name="step"/> of <paramref name="totalSteps"/>.</summary>
    public abstract double Factor(long step, long totalSteps);

    /// <summary>Parses "constant", "step:EPOCHS:GAMMA", "cosine", "onecycle".</summary>
    public static LearningRateSchedule Parse(string text, long stepsPerEpoch)
    {
        var parts = text.Split(':');
        return parts[0] switch
        {
            "constant" => new Constant(),
            "cosine" => new Cosine(),
            "onecycle" => new OneCycle(),
            "step" when parts.Length == 3 && long.TryParse(parts[1], out var e) && double.TryParse(parts[2], System.Globalization.CultureInfo.InvariantCulture, out var gmm)
                => new StepDecay(e * stepsPerEpoch, gmm),
            _ => throw new InvalidOptionException($"learning-rate schedule '{text}': expected constant, cosine, onecycle or step:EPOCHS:GAMMA"),
        };
    }

    /// <summary>The same learning rate throughout.</summary>
    public sealed record Constant : LearningRateSchedule
    {
        /// <inheritdoc/>
        public override double Factor(long step, long totalSteps) => 1;
    }

    /// <summary>Multiplies by <paramref name="Gamma"/> every <paramref name="StepSize"/> steps (PyTorch StepLR).</summary>
    public sealed record StepDecay(long StepSize, double Gamma) : LearningRateSchedule
    {
        /// <inheritdoc/>
        public override double Factor(long step, long totalSteps) => Math.Pow(Gamma, step / Math.Max(1, StepSize));
    }

    /// <summary>Cosine annealing to 0 over the run (PyTorch CosineAnnealingLR with T_max = total steps, eta_min 0).</summary>
    public sealed record Cosine : LearningRateSchedule
    {
        /// <inheritdoc/>
        public override double Factor(long step, long totalSteps) => 0.5 * (1 + Math.Cos(Math.PI * step / Math.Max(1, totalSteps)));
    }

    /// <summary>PyTorch OneCycleLR defaults: warm up for 30% from lr/25 with a cosine, then anneal to lr/(25*1e4).</summary>
    public sealed record OneCycle(double PctStart = 0.3, double DivFactor = 25, double FinalDivFactor = 1e4) : LearningRateSchedule
    {
        /// <inheritdoc/>
        public override double Factor(long step, long totalSteps)
        {
            double start = 1 / DivFactor, end = start / FinalDivFactor;
            double up = PctStart * totalSteps - 1;
            static double Anneal(double a, double b, double pct) => b + (a - b) / 2 * (Math.Cos(Math.PI * pct) + 1);
            if (step <= up) return Anneal(start, 1, up <= 0 ? 1 : step / up);
            double down = totalSteps - 1 - up;
            return Anneal(1, end, down <= 0 ? 1 : (step - up) / down);
        }
    }
}
