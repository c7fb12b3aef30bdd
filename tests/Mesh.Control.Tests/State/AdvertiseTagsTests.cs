using Mesh.Control.Admin;
using Mesh.Control.NodeApi;
using Mesh.Protocol;
using Mesh.Protocol.Control;
using Mesh.WireGuard;

namespace Mesh.Control.Tests.State;

/// <summary>
/// Requested tags (mesh-sidecar up --advertise-tags): granted at registration and on later map requests when the
/// node's user owns every tag under tagOwners (directly, through a group, or through a tag the node carries),
/// refused otherwise with the tag named and nothing changed; a tagged auth key decides the tags and the request
/// must match them.
/// </summary>
public sealed class AdvertiseTagsTests : IDisposable
{
    private const string Policy = """
        {
          "groups": {"group:dba": ["carol@example.com"]},
          "tagOwners": {"tag:db": ["alice@example.com", "group:dba"], "tag:web": ["admin@example.com"],
                        "tag:replica": ["tag:db"], "tag:ops": ["admin@example.com"]},
          "acls": [{"action": "accept", "src": ["tag:web"], "dst": ["tag:db:5432"]}]
        }
        """;

    private readonly StateHarness _harness = new();
    private int _nextKey;

    private static CancellationToken Token => TestContext.Current.CancellationToken;

    [Fact]
    public async Task Owner_RequestsTagAtRegistration_NodeIsTaggedAndThePolicyTreatsItAsTheTag()
    {
        await _harness.Admin.SetPolicyAsync(Policy, Token);
        var key = await KeyAsync("alice");
        var db = NewNode("db");

        var response = await RegisterAsync(db, key, "tag:db");

        Assert.True(response.Authorized);
        Assert.Equal(["tag:db"], response.Tags);
        Assert.Null(response.User);
        Assert.Null(response.NodeKeyExpiry);
        var listed = Assert.Single(await _harness.Admin.ListNodesAsync(null, Token));
        Assert.Equal(["tag:db"], listed.Tags);

        // tag:web may reach tag:db on 5432: the db node's filter admits the web node there.
        var web = await _harness.RegisterAsync("web", "admin", "tag:web");
        var webIp = (await _harness.NodeAsync(web)).IpAddresses[0];
        var map = await _harness.Nodes.MapAsync(db.Machine, new MapRequest { NodeKey = db.NodeKey }, Token);
        var rule = Assert.Single(map.PacketFilter!);
        Assert.Contains(webIp, rule.SrcIPs);
        Assert.All(rule.DstPorts, p => Assert.Equal((5432, 5432), (p.Ports.First, p.Ports.Last)));
    }

    [Fact]
    public async Task GroupMember_RequestsTag_Granted()
    {
        await _harness.Admin.SetPolicyAsync(Policy, Token);
        var response = await RegisterAsync(NewNode("db"), await KeyAsync("carol"), "tag:db");
        Assert.Equal(["tag:db"], response.Tags);
    }

    [Fact]
    public async Task NotAnOwner_Refused_NamingTheTag_AndTheKeyIsNotUsed()
    {
        await _harness.Admin.SetPolicyAsync(Policy, Token);
        var key = await KeyAsync("bob", reusable: false);

        var refused = await Assert.ThrowsAsync<NodeApiException>(() => RegisterAsync(NewNode("db"), key, "tag:db"));

        Assert.Equal(403, refused.Status);
        Assert.Contains("\"tag:db\"", refused.Message, StringComparison.Ordinal);
        Assert.Contains("user \"bob\"", refused.Message, StringComparison.Ordinal);
        Assert.Contains("tagOwners[\"tag:db\"]", refused.Message, StringComparison.Ordinal);
        Assert.Empty(await _harness.Admin.ListNodesAsync(null, Token));

        // The single-use key was not burned: the node registers once it asks for nothing it cannot have.
        var response = await RegisterAsync(NewNode("db"), key);
        Assert.True(response.Authorized);
        Assert.Empty(response.Tags);
    }

    [Fact]
    public async Task UndefinedTag_Refused()
    {
        await _harness.Admin.SetPolicyAsync(Policy, Token);
        var refused = await Assert.ThrowsAsync<NodeApiException>(async () => await RegisterAsync(NewNode("db"), await KeyAsync("alice"), "tag:nope"));
        Assert.Equal(403, refused.Status);
        Assert.Contains("\"tag:nope\" is not defined", refused.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task LaterMapRequest_RequestingTags_ReTagsTheNode_OrIsRefusedAndLeavesItAsItIs()
    {
        await _harness.Admin.SetPolicyAsync(Policy, Token);
        var db = NewNode("db");
        var response = await RegisterAsync(db, await KeyAsync("alice"));
        Assert.Equal("alice", response.User);
        Assert.NotNull(response.NodeKeyExpiry);

        await MapAsync(db, "tag:db");
        var view = await _harness.Admin.GetNodeAsync(response.NodeId, Token);
        Assert.Equal(["tag:db"], view.Tags);

        // tag:db owns tag:replica, so the tagged node may take it too.
        await MapAsync(db, "tag:db", "tag:replica");
        Assert.Equal(["tag:db", "tag:replica"], (await _harness.Admin.GetNodeAsync(response.NodeId, Token)).Tags);

        var refused = await Assert.ThrowsAsync<NodeApiException>(() => MapAsync(db, "tag:ops"));
        Assert.Equal(403, refused.Status);
        Assert.Contains("\"tag:ops\"", refused.Message, StringComparison.Ordinal);
        Assert.Equal(["tag:db", "tag:replica"], (await _harness.Admin.GetNodeAsync(response.NodeId, Token)).Tags);

        // Asking for nothing leaves the tags.
        await MapAsync(db);
        Assert.Equal(["tag:db", "tag:replica"], (await _harness.Admin.GetNodeAsync(response.NodeId, Token)).Tags);
    }

    [Fact]
    public async Task AdminRetag_IsNotUndone_ByTheAgentAskingAgainForWhatItAskedBefore()
    {
        await _harness.Admin.SetPolicyAsync(Policy, Token);
        var db = NewNode("db");
        var response = await RegisterAsync(db, await KeyAsync("alice"), "tag:db");
        await MapAsync(db, "tag:db");
        Assert.Equal(["tag:db"], (await _harness.Admin.GetNodeAsync(response.NodeId, Token)).Tags);

        // An admin retags the node; the agent's next map requests still carry its flag.
        await _harness.Admin.SetNodeTagsAsync(response.NodeId, ["tag:replica"], Token);
        await MapAsync(db, "tag:db");
        await MapAsync(db, "tag:db");
        Assert.Equal(["tag:replica"], (await _harness.Admin.GetNodeAsync(response.NodeId, Token)).Tags);

        // A changed flag is a new request and is evaluated: dropping it changes nothing, asking again does.
        await MapAsync(db);
        Assert.Equal(["tag:replica"], (await _harness.Admin.GetNodeAsync(response.NodeId, Token)).Tags);
        await MapAsync(db, "tag:db");
        Assert.Equal(["tag:db"], (await _harness.Admin.GetNodeAsync(response.NodeId, Token)).Tags);
    }

    [Fact]
    public async Task LaterRegistration_OfTheSameMachine_WithOtherTags_ReTags()
    {
        await _harness.Admin.SetPolicyAsync(Policy, Token);
        var db = NewNode("db");
        await RegisterAsync(db, await KeyAsync("alice"));

        // A later `up` with the same state registers without a key.
        var response = await RegisterAsync(db, key: null, "tag:db");
        Assert.Equal(["tag:db"], response.Tags);

        var refused = await Assert.ThrowsAsync<NodeApiException>(() => RegisterAsync(db, key: null, "tag:web"));
        Assert.Contains("\"tag:web\"", refused.Message, StringComparison.Ordinal);
        Assert.Equal(["tag:db"], Assert.Single(await _harness.Admin.ListNodesAsync(null, Token)).Tags);
    }

    [Fact]
    public async Task TaggedKey_DecidesTheTags_TheRequestMustMatchThem()
    {
        await _harness.Admin.SetPolicyAsync(Policy, Token);
        var key = await KeyAsync("admin", tags: ["tag:web"]);

        Assert.Equal(["tag:web"], (await RegisterAsync(NewNode("web1"), key)).Tags);
        Assert.Equal(["tag:web"], (await RegisterAsync(NewNode("web2"), key, "tag:web")).Tags);

        // admin owns tag:ops, but a tagged key decides: a request other than the key's tags is refused.
        var refused = await Assert.ThrowsAsync<NodeApiException>(() => RegisterAsync(NewNode("web3"), key, "tag:web", "tag:ops"));
        Assert.Equal(403, refused.Status);
        Assert.Contains("\"tag:ops\"", refused.Message, StringComparison.Ordinal);
        Assert.Contains("auth key's tags (tag:web)", refused.Message, StringComparison.Ordinal);
        Assert.Equal(2, (await _harness.Admin.ListNodesAsync(null, Token)).Count);
    }

    private async Task<string> KeyAsync(string user, bool reusable = true, string[]? tags = null)
    {
        if ((await _harness.Admin.ListUsersAsync(Token)).All(u => u.Name != user))
        {
            await _harness.Admin.CreateUserAsync(user, $"{user}@example.com", null, Token);
        }

        return (await _harness.Admin.CreatePreAuthKeyAsync(new PreAuthKeyRequest(user, reusable, false, TimeSpan.FromHours(1), tags ?? []), Token)).Key;
    }

    private Task<RegisterResponse> RegisterAsync(SimNode node, string? key, params string[] tags) =>
        _harness.Nodes.RegisterAsync(node.Machine, new RegisterRequest { NodeKey = node.NodeKey, AuthKey = key, Hostname = node.Hostname, RequestTags = tags }, Token);

    private Task<MapResponse> MapAsync(SimNode node, params string[] tags) =>
        _harness.Nodes.MapAsync(node.Machine, new MapRequest
        {
            NodeKey = node.NodeKey,
            ReadOnly = true,
            Hostinfo = new Hostinfo { Hostname = node.Hostname, RequestTags = tags },
        }, Token);

    private SimNode NewNode(string hostname) => new(hostname, new MachineKey(NextKey()), new NodeKey(NextKey()));

    private NoisePublicKey NextKey()
    {
        var bytes = new byte[NoisePublicKey.Size];
        BitConverter.TryWriteBytes(bytes, ++_nextKey);
        bytes[31] = 0x7b;
        return new NoisePublicKey(bytes);
    }

    public void Dispose() => _harness.Dispose();
}
