using System.Text.Json;
using Mesh.Protocol.Control;
using Microsoft.Extensions.Logging;

namespace Mesh.Control.Relay;

/// <summary>
/// `derp.urls`: extra relay maps merged after the embedded relay's region (as Headscale merges
/// external DERP maps). Each URL (http, https or file) holds a relay map in the control protocol's JSON
/// (<c>{"regions": [{"regionId", "regionCode", "name", "nodes": [{"name", "url", "stunEndpoint"}]}]}</c>).
/// Read once at start; a map that cannot be read or is malformed is logged and skipped, so a relay
/// host being down never keeps the coordinator from starting. Regions whose id is already taken (by
/// the embedded region or an earlier map) are skipped too.
/// </summary>
public static class ExtraRelayMaps
{
    private static readonly TimeSpan FetchTimeout = TimeSpan.FromSeconds(10);

    public static async Task<IReadOnlyList<RelayRegion>> LoadAsync(IReadOnlyList<string> urls, IEnumerable<int> takenRegionIds, ILogger logger, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(urls);
        ArgumentNullException.ThrowIfNull(logger);
        var regions = new List<RelayRegion>();
        if (urls.Count == 0)
        {
            return regions;
        }

        var taken = new HashSet<int>(takenRegionIds);
        using var http = new HttpClient { Timeout = FetchTimeout };
        foreach (var text in urls)
        {
            RelayMap? map;
            try
            {
                var url = new Uri(text, UriKind.Absolute);
                var json = url.IsFile
                    ? await File.ReadAllTextAsync(url.LocalPath, cancellationToken).ConfigureAwait(false)
                    : await http.GetStringAsync(url, cancellationToken).ConfigureAwait(false);
                map = JsonSerializer.Deserialize(json, ControlJsonContext.Default.RelayMap);
            }
            catch (Exception e) when (e is HttpRequestException or IOException or UnauthorizedAccessException or JsonException or TaskCanceledException or UriFormatException)
            {
                logger.LogWarning("derp.urls {Url}: {Reason}; its relays are not in the map", text, e.Message);
                continue;
            }

            foreach (var region in map?.Regions ?? [])
            {
                if (Problem(region) is { } problem)
                {
                    logger.LogWarning("derp.urls {Url}: region {Region} skipped: {Problem}", text, region.RegionCode, problem);
                }
                else if (!taken.Add(region.RegionId))
                {
                    logger.LogWarning("derp.urls {Url}: region {Region} skipped: region id {Id} is already in the map", text, region.RegionCode, region.RegionId);
                }
                else
                {
                    regions.Add(region);
                }
            }
        }

        return regions;
    }

    private static string? Problem(RelayRegion region)
    {
        if (region.RegionId is < 1 or > 65535)
        {
            return $"regionId {region.RegionId}: expected 1-65535";
        }

        if (string.IsNullOrWhiteSpace(region.RegionCode))
        {
            return "no regionCode";
        }

        if (region.Nodes.Count == 0)
        {
            return "no nodes";
        }

        foreach (var node in region.Nodes)
        {
            if (!Uri.TryCreate(node.Url, UriKind.Absolute, out var url) || (url.Scheme != Uri.UriSchemeHttp && url.Scheme != Uri.UriSchemeHttps))
            {
                return $"node {node.Name}: url \"{node.Url}\" is not an http(s) URL";
            }
        }

        return null;
    }
}
