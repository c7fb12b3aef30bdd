using System.Reflection;
using k8s;
using k8s.Models;
using Mesh.Operator.Kubernetes.Resources;

namespace Mesh.Operator.Kubernetes.Crds;

/// <summary>
/// The CustomResourceDefinitions of MeshOperator (apiextensions.k8s.io/v1), built from the resource types: names
/// from [KubernetesEntity] and [CustomResource], the schema from <see cref="OpenApiSchemaBuilder"/>, printer
/// columns from [PrinterColumn], the status subresource for every kind. One version, v1alpha1, served and stored.
/// <c>mesh-operator crds</c> prints them (<see cref="CrdYaml"/>); the operator will apply the same objects.
/// </summary>
internal static class CrdBuilder
{
    /// <summary>The kinds, in the order <c>mesh-operator crds</c> prints them.</summary>
    public static IReadOnlyList<Type> Kinds { get; } = [typeof(MeshNetwork), typeof(MeshNode), typeof(MeshAcl)];

    public static IReadOnlyList<V1CustomResourceDefinition> BuildAll() => [.. Kinds.Select(Build)];

    public static V1CustomResourceDefinition Build(Type kind)
    {
        ArgumentNullException.ThrowIfNull(kind);
        var entity = kind.GetCustomAttribute<KubernetesEntityAttribute>() ?? throw new InvalidOperationException($"{kind.Name} has no [KubernetesEntity]");
        var resource = kind.GetCustomAttribute<CustomResourceAttribute>() ?? throw new InvalidOperationException($"{kind.Name} has no [CustomResource]");
        if (!typeof(IKubernetesObject<V1ObjectMeta>).IsAssignableFrom(kind))
        {
            throw new InvalidOperationException($"{kind.Name} is not an IKubernetesObject<V1ObjectMeta>");
        }

        var columns = kind.GetCustomAttributes<PrinterColumnAttribute>()
            .Select(static c => new V1CustomResourceColumnDefinition
            {
                Name = c.Name,
                Type = c.Type,
                JsonPath = c.JsonPath,
                Description = c.Description,
                Priority = c.Priority == 0 ? null : c.Priority,
            })
            .ToList();

        return new V1CustomResourceDefinition
        {
            ApiVersion = "apiextensions.k8s.io/v1",
            Kind = "CustomResourceDefinition",
            Metadata = new V1ObjectMeta { Name = $"{entity.PluralName}.{entity.Group}" },
            Spec = new V1CustomResourceDefinitionSpec
            {
                Group = entity.Group,
                Names = new V1CustomResourceDefinitionNames
                {
                    Kind = entity.Kind,
                    ListKind = entity.Kind + "List",
                    Plural = entity.PluralName,
                    Singular = resource.Singular,
                    ShortNames = resource.ShortNames,
                    Categories = resource.Categories,
                },
                Scope = resource.Scope.ToString(),
                Versions =
                [
                    new V1CustomResourceDefinitionVersion
                    {
                        Name = entity.ApiVersion,
                        Served = true,
                        Storage = true,
                        Schema = new V1CustomResourceValidation { OpenAPIV3Schema = OpenApiSchemaBuilder.ForKind(kind) },
                        Subresources = new V1CustomResourceSubresources { Status = new Dictionary<string, object>() },
                        AdditionalPrinterColumns = columns,
                    },
                ],
            },
        };
    }
}
