"""Optional fixes to moto 5.2.5's CloudFormation UpdateStack, for a moto wrapper to apply.

Not used by check_on_moto.py (which starts nothing). A wrapper such as e2e/src/moto_server.py
can apply them before calling moto's main:

    sys.path.insert(0, "<repo>/infra/cloudformation")
    import moto_cfn_fixes
    moto_cfn_fixes.apply()

What moto 5.2.5 gets wrong on UpdateStack with templates that use resource Conditions (all
four clickstream templates do):

1. A changed parameter that is `Ref`ed by a resource whose Condition is false makes moto
   "update" a resource that was never created: update_from_cloudformation_json(None, ...)
   raises AttributeError (UpdateStack answers HTTP 500) or, with a Fn::GetAtt to another
   absent resource, ValidationError "Template error: instance of Fn::GetAtt references
   undefined resource ...". E.g. changing IngestImage of the ingestion stack while its bridge
   (SinkType=s3) does not exist, or WorkerCount of processing without a network.
2. A changed parameter `Ref`ed by a resource of a type moto cannot update (log group, VPC,
   subnet, load balancer, target group...) makes moto forget the resource: it stays in its
   backend but DeleteStack no longer deletes it.
3. A resource whose Condition turns true is only created when something later reads it (an
   Output, DescribeStackResources); one whose Condition turns false is kept until DeleteStack.
4. An updated AWS::ECS::TaskDefinition is registered with the template's PascalCase keys
   (`Environment: [{Name, Value}]`) where a created one, and AWS, have camelCase
   (`environment: [{name, value}]`): DescribeTaskDefinition then shows no environment.

apply() wraps the two moto functions involved so that an update skips resources whose
Condition is false, keeps tracking resources moto cannot update, then creates the resources
whose Condition became true and deletes those whose Condition became false, as CloudFormation
does (moto still does not apply property changes to the types it cannot update); and it
camelCases an updated task definition's container definitions as a creation does.

5. An AWS::ElasticLoadBalancingV2::LoadBalancer's LoadBalancerAttributes are ignored (the
   access logs, idle timeout... stay moto's defaults): apply() sets them after creation.
6. moto 5.2.5's CloudFormation has no AWS::MSK::Cluster (the ingestion stack's cluster when
   no Kafka brokers are given): it skips the resource, and a `Ref` to it is empty. apply()
   adds one that creates the cluster in moto's Kafka (MSK) backend and deletes it with the
   stack; `Ref` gives its ARN, as on AWS. Property updates are not applied.
"""

from moto.cloudformation import models, parsing
from moto.core.common_models import CloudFormationModel
from moto.core.utils import pascal_to_camelcase, remap_nested_keys
from moto.ecs import models as ecs_models
from moto.elbv2 import models as elbv2_models
from moto.kafka.models import kafka_backends

_ORIGINAL_PARSE_AND_UPDATE = parsing.parse_and_update_resource
_ORIGINAL_UPDATE = parsing.ResourceMap.update
_ORIGINAL_PARSE_AND_CREATE = parsing.parse_and_create_resource
_ORIGINAL_CREATE_RESOURCES = models.Stack.create_resources
_ORIGINAL_OUTPUTS = models.Stack.outputs
_ORIGINAL_STACK_RESOURCES = models.Stack.stack_resources
_ORIGINAL_UPDATE_TASK_DEFINITION = ecs_models.TaskDefinition.update_from_cloudformation_json.__func__
_ORIGINAL_CREATE_LOAD_BALANCER = elbv2_models.FakeLoadBalancer.create_from_cloudformation_json.__func__
# Stacks whose resources are gone: reading their outputs or resources must not re-create them.
_ROLLED_BACK = ("ROLLBACK_IN_PROGRESS", "ROLLBACK_COMPLETE", "ROLLBACK_FAILED", "DELETE_COMPLETE")


def _parse_and_update_resource(logical_id, resource_json, resources_map, account_id, region_name):
    condition = resource_json.get("Condition")
    if condition and not resources_map.lazy_condition_map[condition]:
        # Keep whatever is there (None, or a resource _reconcile deletes next).
        return resources_map._parsed_resources.get(logical_id)
    if resources_map._parsed_resources.get(logical_id) is None:
        # Condition just became true: create it rather than "update" nothing.
        resources_map._parsed_resources.pop(logical_id, None)
        return resources_map[logical_id]
    updated = _ORIGINAL_PARSE_AND_UPDATE(logical_id, resource_json, resources_map, account_id, region_name)
    # None: moto cannot update this type (AWS::Logs::LogGroup, AWS::EC2::VPC/Subnet,
    # AWS::ElasticLoadBalancingV2::LoadBalancer/TargetGroup...). moto would then forget the
    # resource (DeleteStack leaves it behind); keep tracking the unchanged one instead.
    return resources_map._parsed_resources.get(logical_id) if updated is None else updated


def _update(self, template, parameters=None):
    _ORIGINAL_UPDATE(self, template, parameters)
    for logical_id, resource_json in self._resource_json_map.items():
        condition = resource_json.get("Condition")
        wanted = not condition or self.lazy_condition_map[condition]
        existing = self._parsed_resources.get(logical_id)
        if wanted and existing is None:
            self._parsed_resources.pop(logical_id, None)
            self[logical_id]  # creates it (types moto does not support stay absent)
        elif not wanted and existing is not None:
            self._delete_resource(existing, resource_json)
            self._parsed_resources.pop(logical_id, None)


def _update_task_definition(cls, original_resource, new_resource_name, cloudformation_json, account_id, region_name):
    properties = dict(cloudformation_json["Properties"])
    properties["ContainerDefinitions"] = remap_nested_keys(properties.get("ContainerDefinitions", []), pascal_to_camelcase)
    camel_cased = {**cloudformation_json, "Properties": properties}
    return _ORIGINAL_UPDATE_TASK_DEFINITION(cls, original_resource, new_resource_name, camel_cased, account_id, region_name)


def _create_load_balancer(cls, resource_name, cloudformation_json, account_id, region_name, **kwargs):
    balancer = _ORIGINAL_CREATE_LOAD_BALANCER(cls, resource_name, cloudformation_json, account_id, region_name, **kwargs)
    attributes = {attribute["Key"]: attribute["Value"] for attribute in cloudformation_json["Properties"].get("LoadBalancerAttributes") or [] if attribute}
    if attributes:
        elbv2_models.elbv2_backends[account_id][region_name].modify_load_balancer_attributes(balancer.arn, attributes)
    return balancer


class MskClusterOfCloudFormation(CloudFormationModel):
    """An AWS::MSK::Cluster: the cluster in moto's Kafka backend (see 6. above)."""

    # moto's model metaclass takes the service from the module's name (moto.<service>...).
    __module__ = "moto.kafka.models"

    def __init__(self, account_id, region_name, arn):
        self.account_id, self.region_name, self.arn = account_id, region_name, arn

    @staticmethod
    def cloudformation_name_type():
        return "ClusterName"

    @staticmethod
    def cloudformation_type():
        return "AWS::MSK::Cluster"

    @classmethod
    def has_cfn_attr(cls, attr):
        return attr == "Arn"

    def get_cfn_attribute(self, attribute_name):
        return self.arn

    @property
    def physical_resource_id(self):
        return self.arn

    @classmethod
    def create_from_cloudformation_json(cls, resource_name, cloudformation_json, account_id, region_name, **kwargs):
        template_properties = cloudformation_json["Properties"]
        # The API's (and moto's) keys are camelCase where the template's are PascalCase.
        properties = remap_nested_keys({k: v for k, v in template_properties.items() if k != "Tags"}, pascal_to_camelcase)
        arn, _, _ = kafka_backends[account_id][region_name].create_cluster(
            broker_node_group_info=properties["brokerNodeGroupInfo"],
            client_authentication=properties.get("clientAuthentication"),
            cluster_name=properties.get("clusterName", resource_name),
            encryption_info=properties.get("encryptionInfo"),
            kafka_version=properties["kafkaVersion"],
            number_of_broker_nodes=int(properties["numberOfBrokerNodes"]),
            tags=template_properties.get("Tags"),
        )
        return cls(account_id, region_name, arn)

    @classmethod
    def update_from_cloudformation_json(cls, original_resource, new_resource_name, cloudformation_json, account_id, region_name):
        return original_resource

    def delete(self, account_id, region_name):
        kafka_backends[self.account_id][self.region_name].clusters.pop(self.arn, None)

    def is_created(self):
        return True


def apply():
    """Idempotent."""
    parsing.parse_and_update_resource = _parse_and_update_resource
    parsing.ResourceMap.update = _update
    ecs_models.TaskDefinition.update_from_cloudformation_json = classmethod(_update_task_definition)
    elbv2_models.FakeLoadBalancer.create_from_cloudformation_json = classmethod(_create_load_balancer)
    # moto finds models among CloudFormationModel's subclasses (defined above), once: forget
    # a map built before.
    parsing.get_model_map.cache_clear()


# ------------------------------------------------------------------------------------------
# Optional: AWS-like failed creations. Without this, a resource that fails during CreateStack
# makes moto 5.2.5 answer CreateStack with that resource's error (HTTP 400, e.g.
# InvalidBucketName) and leave the stack CREATE_IN_PROGRESS forever, holding what was created
# before (and DescribeStacks answers HTTP 500 when an output reads the failed resource).


def _parse_and_create_resource(logical_id, resource_json, resources_map, account_id, region_name):
    try:
        return _ORIGINAL_PARSE_AND_CREATE(logical_id, resource_json, resources_map, account_id, region_name)
    except Exception as error:
        if not hasattr(error, "cfn_logical_id"):
            error.cfn_logical_id, error.cfn_resource_type = logical_id, resource_json.get("Type", "")
        raise


def _reason_of(error):
    message = getattr(error, "message", None) or getattr(error, "description", None) or str(error)
    code = getattr(error, "error_type", None) or getattr(error, "code", None) or type(error).__name__
    return f"{message} (Service: {code})"


def _create_resources(self):
    try:
        _ORIGINAL_CREATE_RESOURCES(self)
    except Exception as error:
        logical_id = getattr(error, "cfn_logical_id", self.name)
        reason = _reason_of(error)
        self.events.append(
            models.Event(
                stack_id=self.stack_id,
                stack_name=self.name,
                logical_resource_id=logical_id,
                physical_resource_id="",
                resource_type=getattr(error, "cfn_resource_type", "AWS::CloudFormation::Stack"),
                resource_status="CREATE_FAILED",
                resource_status_reason=reason,
                resource_properties=None,
            )
        )
        self.status = "ROLLBACK_IN_PROGRESS"
        self.stack_status_reason = f"The following resource(s) failed to create: [{logical_id}]. Rollback requested by user."
        self._add_stack_event("ROLLBACK_IN_PROGRESS", resource_status_reason=self.stack_status_reason)
        try:
            self.resource_map.delete()
            self.status = "ROLLBACK_COMPLETE"
        except Exception as rollback_error:  # a resource that cannot be deleted
            self.status = "ROLLBACK_FAILED"
            self.stack_status_reason = _reason_of(rollback_error)
        self._add_stack_event(self.status)


def _outputs(self):
    # moto evaluates outputs lazily: reading those of a rolled-back (or deleted) stack would
    # re-create the resources they reference.
    return None if self.status in _ROLLED_BACK else _ORIGINAL_OUTPUTS.fget(self)


def _stack_resources(self):
    if self.status in _ROLLED_BACK:
        return [r for r in self.resource_map._parsed_resources.values() if hasattr(r, "logical_resource_id")]
    return _ORIGINAL_STACK_RESOURCES.fget(self)


def apply_create_rollback():
    """A failed resource makes CreateStack succeed and the stack end ROLLBACK_COMPLETE (its
    created resources deleted), with a CREATE_FAILED event naming the resource and the
    reason, as on AWS (where the same happens asynchronously). Idempotent."""
    parsing.parse_and_create_resource = _parse_and_create_resource
    models.Stack.create_resources = _create_resources
    models.Stack.outputs = property(_outputs)
    models.Stack.stack_resources = property(_stack_resources)
