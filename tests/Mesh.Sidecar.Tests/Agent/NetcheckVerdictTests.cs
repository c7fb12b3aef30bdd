using System.Net;
using Mesh.Sidecar.Agent;

namespace Mesh.Sidecar.Tests.Agent;

/// <summary>netcheck's "mapping varies by destination" line: what it compares and what it concludes.</summary>
public sealed class NetcheckVerdictTests
{
    private static readonly IPEndPoint Primary = IPEndPoint.Parse("198.18.2.1:3478");
    private static readonly IPEndPoint Alternate = IPEndPoint.Parse("198.18.2.1:3479");
    private static readonly IPEndPoint Other = IPEndPoint.Parse("198.18.3.1:3478");
    private static readonly IPEndPoint Mapped = IPEndPoint.Parse("198.18.2.9:41641");

    [Fact]
    public void SameMappingFromTwoPortsOfOneServer_No()
    {
        var verdict = MeshAgent.MappingVariesByDestination([(Primary, Mapped), (Alternate, Mapped)], 2);
        Assert.Equal("no (STUN 198.18.2.1:3478 and 198.18.2.1:3479, one IP, different ports, saw the same mapping)", verdict);
    }

    [Fact]
    public void DifferentMappings_Yes()
    {
        var verdict = MeshAgent.MappingVariesByDestination([(Primary, Mapped), (Alternate, IPEndPoint.Parse("198.18.2.9:50000"))], 2);
        Assert.StartsWith("yes (STUN 198.18.2.1:3478 and 198.18.2.1:3479, one IP, different ports, saw different mappings", verdict);
    }

    [Fact]
    public void ServersOnDifferentIps_SaySo()
    {
        var verdict = MeshAgent.MappingVariesByDestination([(Primary, Mapped), (Other, Mapped)], 2);
        Assert.Equal("no (STUN 198.18.2.1:3478 and 198.18.3.1:3478, different IPs, saw the same mapping)", verdict);
    }

    [Fact]
    public void OneStunEndpoint_Unknown_NamingWhatIsMissing()
    {
        Assert.StartsWith("unknown (the relay map names one STUN endpoint", MeshAgent.MappingVariesByDestination([(Primary, Mapped)], 1));
        Assert.Equal("unknown (1 of 2 STUN endpoints answered; comparing needs two)", MeshAgent.MappingVariesByDestination([(Primary, Mapped)], 2));
        Assert.StartsWith("unknown (", MeshAgent.MappingVariesByDestination([], 0));
    }
}
