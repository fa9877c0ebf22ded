using FeatureTransfer.Data;
using FeatureTransfer.Extraction;
using FeatureTransfer.Features;
using FeatureTransfer.Heads;
using FeatureTransfer.MLNet;
using FeatureTransfer.Normalization;
using FeatureTransfer.Tests.TestSupport;
using Microsoft.ML;
using Microsoft.ML.Data;
using Microsoft.ML.Trainers;

namespace FeatureTransfer.Tests.MLNet;

/// <summary>FeatureTable &lt;-&gt; IDataView on real features of the committed Fashion-MNIST sample (embedded default backbone).</summary>
public class FeatureDataViewTests
{
    internal static async Task<FeatureTable> SampleFeatures(string split, string layers)
    {
        using var extractor = FeatureExtractor.LoadDefault().Tap(layers);
        var (table, skipped) = await extractor.ExtractAsync(ImageDataset.Open(Path.Combine(TestPaths.FashionSample, split)));
        Assert.Empty(skipped);
        return table;
    }

    [Fact]
    public async Task Feature_table_to_data_view_and_back_is_exact()
    {
        var extracted = await SampleFeatures("test", Presets.Fne);
        // Some unlabelled rows: they must come back unlabelled, not as "".
        var labels = extracted.Labels.Select((l, i) => i % 7 == 3 ? null : l).ToArray();
        var table = new FeatureTable(extracted.Ids, labels, extracted.Data, extracted.Provenance);

        var view = table.ToDataView();
        Assert.Equal(["Id", "Label", "Features"], view.Schema.Select(c => c.Name));
        Assert.Equal(table.Rows, view.GetRowCount());
        var features = view.Schema["Features"];
        Assert.Equal(new VectorDataViewType(NumberDataViewType.Single, 320), features.Type);
        VBuffer<ReadOnlyMemory<char>> slots = default;
        features.GetSlotNames(ref slots);
        Assert.Equal(table.Layout.ColumnNames(), slots.DenseValues().Select(s => s.ToString()));
        Assert.StartsWith("relu4:", slots.GetValues()[0].ToString(), StringComparison.Ordinal);

        AssertSame(table, view.ToFeatureTable());
        // Through ML.NET's own views: a cache keeps the schema (and so the provenance annotation) and every value.
        var ml = new MLContext(seed: 1);
        AssertSame(table, ml.Data.Cache(view).ToFeatureTable());
        // Key labels: the class names in ordinal order, unlabelled rows the missing key.
        var keyed = table.ToDataView(new FeatureDataViewOptions { LabelAsKey = true });
        var label = keyed.Schema["Label"];
        Assert.Equal(new KeyDataViewType(typeof(uint), 5), label.Type);
        VBuffer<ReadOnlyMemory<char>> classes = default;
        label.GetKeyValues(ref classes);
        Assert.Equal(table.Labels.OfType<string>().Distinct().Order(StringComparer.Ordinal), classes.DenseValues().Select(c => c.ToString()));
        Assert.Equal(table.Labels.Select(l => l is null ? 0u : (uint)Array.IndexOf(classes.DenseValues().Select(c => c.ToString()).ToArray(), l) + 1),
            keyed.GetColumn<uint>("Label"));
        AssertSame(table, keyed.ToFeatureTable());

        // A shuffled read (ML.NET asks the view for a random cursor) serves every row intact, in another order.
        var shuffled = ml.Data.ShuffleRows(view, seed: 3).ToFeatureTable();
        Assert.NotEqual(table.Ids, shuffled.Ids);
        var index = table.Ids.Select((id, i) => (id, i)).ToDictionary(t => t.id, t => t.i);
        for (int r = 0; r < shuffled.Rows; r++)
        {
            int i = index[shuffled.Ids[r]];
            Assert.Equal(table.Labels[i], shuffled.Labels[r]);
            Assert.True(table.Row(i).SequenceEqual(shuffled.Row(r)), $"row {shuffled.Ids[r]}");
        }
    }

    [Fact]
    public async Task A_view_without_provenance_gets_its_layers_from_the_slot_names()
    {
        var table = await SampleFeatures("test", Presets.Fne);
        var ml = new MLContext(seed: 0);
        // A column ML.NET made keeps slot names but not the provenance annotation.
        var copied = ml.Transforms.CopyColumns("Copy", "Features").Fit(table.ToDataView()).Transform(table.ToDataView());
        var back = copied.ToFeatureTable(options: new FeatureDataViewOptions { FeaturesColumnName = "Copy" });
        Assert.Equal(table.Data, back.Data);
        Assert.Equal(table.Layout.Taps.Select(t => (t.Tensor, t.Offset, t.Length)), back.Layout.Taps.Select(t => (t.Tensor, t.Offset, t.Length)));
        // With the provenance given, it is the one used; a provenance of another width is refused.
        Assert.Equal(table.Provenance.ModelSha256, copied.ToFeatureTable(table.Provenance, new FeatureDataViewOptions { FeaturesColumnName = "Copy" }).Provenance.ModelSha256);
        var bottleneck = await SampleFeatures("test", Presets.Bottleneck);
        var e = Assert.Throws<ProvenanceMismatchException>(() => copied.ToFeatureTable(bottleneck.Provenance, new FeatureDataViewOptions { FeaturesColumnName = "Copy" }));
        Assert.Contains("320 features", e.Message);
        Assert.Contains("'Nope'", Assert.Throws<InvalidOptionException>(() => copied.ToFeatureTable(options: new FeatureDataViewOptions { FeaturesColumnName = "Nope" })).Message);
    }

    [Fact]
    public async Task An_ml_net_trainer_on_the_view_equals_the_library_head()
    {
        var train = await SampleFeatures("train", Presets.Bottleneck);
        var test = await SampleFeatures("test", Presets.Bottleneck);
        var head = HeadTrainer.Train(train, NormRecipe.None, new HeadOptions { Kind = HeadKind.LogReg });
        var expected = head.Predict(test);

        // The same trainer and settings as the library's logreg head, fed by the view (label key = class index).
        var ml = new MLContext(seed: 0);
        var keyed = new FeatureDataViewOptions { LabelAsKey = true };
        var model = ml.MulticlassClassification.Trainers.LbfgsMaximumEntropy(new LbfgsMaximumEntropyMulticlassTrainer.Options
        {
            L2Regularization = head.Options.EffectiveL2,
            L1Regularization = 0,
            NumberOfThreads = 1,
            MaximumNumberOfIterations = 100,
        }).Fit(train.ToDataView(keyed));
        var scores = model.Transform(test.ToDataView(keyed)).GetColumn<float[]>("Score").ToArray();

        Assert.Equal(test.Rows, scores.Length);
        for (int r = 0; r < test.Rows; r++)
        {
            var want = expected.RowScores(r);
            for (int c = 0; c < head.Classes.Count; c++)
                Assert.True(Math.Abs(want[c] - scores[r][c]) <= 1e-5, $"row {r} class {c}: {want[c]} vs {scores[r][c]}");
        }
    }

    private static void AssertSame(FeatureTable expected, FeatureTable actual)
    {
        Assert.Equal(expected.Ids, actual.Ids);
        Assert.Equal(expected.Labels, actual.Labels);
        Assert.Equal(expected.Data.Length, actual.Data.Length);
        for (int i = 0; i < expected.Data.Length; i++)
            Assert.True(BitConverter.SingleToInt32Bits(expected.Data[i]) == BitConverter.SingleToInt32Bits(actual.Data[i]), $"value {i}");
        Assert.Equal(expected.Layout.Taps, actual.Layout.Taps);
        // The whole provenance: model, layout, preprocessing, dataset listing, batch and run size.
        Assert.Equal(ProvenanceJson.Serialize(expected.Provenance), ProvenanceJson.Serialize(actual.Provenance));
    }
}
