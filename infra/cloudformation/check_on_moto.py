#!/usr/bin/env python3
"""Create, inspect and delete the clickstream stacks against a running moto server.

Starts nothing: point it at a moto server started through the test wrapper, which applies
moto_cfn_fixes (the ALB's attributes, AWS::MSK::Cluster, updates), e.g.

    cd infra/cloudformation && cp ../../e2e/src/moto_server.py /tmp/ && \
      PYTHONPATH=$PWD ../../local/.state/venv/bin/python /tmp/moto_server.py -H 127.0.0.1 -p 15731 &
    local/.state/venv/bin/python infra/cloudformation/check_on_moto.py --endpoint http://127.0.0.1:15731

(e2e/tests/templates.rs does this.) Plain moto_server fails the access-log and MSK checks.

Default run: first the control plane (control-plane.yaml, deployed once by hand before any
pipeline) with its default parameters, inspected (tables, configuration file, task
definitions) and deleted; then the pipeline stacks in PipelineLifecycleWorkflow's level order
(processing before ingestion inside level 1, so that ingestion gets the bucket): creates each
template with sample parameters, waits until its status leaves *_IN_PROGRESS
(CREATE_COMPLETE expected), prints the statuses seen, the outputs and which template
resources moto created, then deletes the stacks in reverse order and waits for
DELETE_COMPLETE. Exits 1 on any failure, 2 on bad arguments.

    --variants       also every template with other parameter sets (kinesis/kafka sinks,
                     an existing VPC, Redshift, no engine, QuickSight principal...; for the
                     control plane each TemporalMode and AuthMode). The Kafka sink without
                     brokers creates an MSK cluster, which needs moto started through
                     e2e/src/moto_server.py (moto 5.2.5's CloudFormation has no
                     AWS::MSK::Cluster; its moto_cfn_fixes add one)
    --failure-modes  also the documented failing parameter values: checks that CreateStack
                     is refused as expected, that the stack is then listed CREATE_IN_PROGRESS,
                     and that DeleteStack cleans it up (DELETE_COMPLETE, nothing left behind)
    --updates        also UpdateStack: parameter changes that work on moto 5.2.5 as it is, and
                     the "No updates are to be performed." refusal
    --keep           do not delete the stacks of the default run

Needs only boto3 (the local venv has it). AWS credentials default to dummy values.
"""

import argparse
import os
import random
import string
import sys
import time
import tomllib

import boto3
import botocore.config
import botocore.exceptions

HERE = os.path.dirname(os.path.abspath(__file__))
TEMPLATES = ("ingestion", "processing", "modeling", "reporting")
# Deployed once by hand before any pipeline, not by the lifecycle workflow.
CONTROL_PLANE = "control-plane"
# On AWS the modeling and reporting roles have names (CAPABILITY_NAMED_IAM); moto ignores it.
CAPABILITIES = ["CAPABILITY_IAM", "CAPABILITY_NAMED_IAM"]


class CheckFailed(Exception):
    pass


def template_body(name):
    with open(os.path.join(HERE, f"{name}.yaml"), encoding="utf-8") as file:
        return file.read()


def template_resources(name):
    """Logical ids of the template's resources (a tolerant line scan; no YAML library needed)."""
    ids, inside = [], False
    for line in template_body(name).splitlines():
        if line.startswith("Resources:"):
            inside = True
            continue
        if inside and line and not line.startswith((" ", "#")):
            break
        if inside and line.startswith("  ") and not line.startswith("   ") and not line.lstrip().startswith("#") and line.rstrip().endswith(":"):
            ids.append(line.strip()[:-1])
    return ids


def error_of(error):
    return error.response["Error"]["Code"], error.response["Error"]["Message"], error.response["ResponseMetadata"]["HTTPStatusCode"]


class Checker:
    def __init__(self, endpoint, region, timeout):
        session = boto3.session.Session(
            aws_access_key_id=os.environ.get("AWS_ACCESS_KEY_ID", "testing"),
            aws_secret_access_key=os.environ.get("AWS_SECRET_ACCESS_KEY", "testing"),
            region_name=region,
        )
        config = botocore.config.Config(retries={"max_attempts": 1})
        self.client = lambda service: session.client(service, endpoint_url=endpoint, config=config)
        self.cf = self.client("cloudformation")
        self.timeout = timeout

    # ------------------------------------------------------------------ primitives
    def wait(self, stack_id, final):
        """Poll DescribeStacks until the status leaves *_IN_PROGRESS; returns the statuses seen."""
        seen, deadline = [], time.monotonic() + self.timeout
        while True:
            stack = self.cf.describe_stacks(StackName=stack_id)["Stacks"][0]
            status = stack["StackStatus"]
            if not seen or seen[-1][1] != status:
                seen.append((round(time.monotonic() - self.started, 2), status))
            if not status.endswith("_IN_PROGRESS"):
                break
            if time.monotonic() > deadline:
                raise CheckFailed(f"{stack['StackName']}: still {status} after {self.timeout}s")
            time.sleep(0.5)
        if status != final:
            raise CheckFailed(f"{stack['StackName']}: {status} ({stack.get('StackStatusReason', '')}), expected {final}")
        return stack, seen

    def start_creation(self, template, stack_name, parameters, tags=None):
        """CreateStack (the clock of `wait` starts here); its stack id. Raises ClientError."""
        self.started = time.monotonic()
        return self.cf.create_stack(
            StackName=stack_name,
            TemplateBody=template_body(template),
            Parameters=[{"ParameterKey": k, "ParameterValue": v} for k, v in parameters.items()],
            Capabilities=CAPABILITIES,
            Tags=[{"Key": k, "Value": v} for k, v in (tags or {}).items()],
        )["StackId"]

    def create(self, template, stack_name, parameters, tags):
        print(f"\n== create {stack_name} from {template}.yaml")
        for key, value in parameters.items():
            print(f"   {key} = {value!r}")
        try:
            stack_id = self.start_creation(template, stack_name, parameters, tags)
        except botocore.exceptions.ClientError as error:
            code, message, http = error_of(error)
            raise CheckFailed(f"CreateStack {stack_name}: {code} ({http}): {message}")
        returned = round(time.monotonic() - self.started, 2)
        stack, seen = self.wait(stack_id, "CREATE_COMPLETE")
        print(f"   CreateStack returned after {returned}s; statuses (seconds since the call): {seen}")
        outputs = {o["OutputKey"]: o["OutputValue"] for o in stack.get("Outputs") or []}
        for key, value in outputs.items():
            print(f"   output {key} = {value}")
        summaries = self.cf.list_stack_resources(StackName=stack_id)["StackResourceSummaries"]
        # moto lists resources it did not create (condition false, or a type its CloudFormation
        # does not support) as entries with an empty LogicalResourceId.
        created = sorted(r["LogicalResourceId"] for r in summaries if r["LogicalResourceId"])
        not_created = [r for r in template_resources(template) if r not in created]
        print(f"   resources created ({len(created)}): {', '.join(created)}")
        print(f"   not created (condition false, or skipped by moto): {', '.join(not_created) or '-'}")
        return stack_id, outputs

    def delete(self, stack_id, label):
        """DeleteStack, then poll DescribeStacks by *name* until the stack is gone.

        Not by stack id: moto evaluates outputs lazily, and describing a DELETE_COMPLETE stack
        by id whose outputs were never read re-creates the resources they reference
        (ListStackResources by id re-creates all of them). A deleted stack's name answers
        ValidationError "Stack with id <name> does not exist", on AWS as on moto; ListStacks
        (which reads no outputs) then gives its final status.
        """
        self.started = time.monotonic()
        stack_name = stack_id.split("/")[1]
        try:
            self.cf.delete_stack(StackName=stack_id)
        except botocore.exceptions.ClientError as error:
            code, message, http = error_of(error)
            raise CheckFailed(f"DeleteStack {label}: {code} ({http}): {message}")
        seen, deadline = [], time.monotonic() + self.timeout
        while True:
            try:
                status = self.cf.describe_stacks(StackName=stack_name)["Stacks"][0]["StackStatus"]
            except botocore.exceptions.ClientError as error:
                if "does not exist" not in error_of(error)[1]:
                    raise
                status = next(s["StackStatus"] for s in self.cf.list_stacks()["StackSummaries"] if s["StackId"] == stack_id)
            if not seen or seen[-1][1] != status:
                seen.append((round(time.monotonic() - self.started, 2), status))
            if not status.endswith("_IN_PROGRESS"):
                break
            if time.monotonic() > deadline:
                raise CheckFailed(f"{label}: still {status} after {self.timeout}s")
            time.sleep(0.5)
        if status != "DELETE_COMPLETE":
            raise CheckFailed(f"{label}: {status}, expected DELETE_COMPLETE")
        print(f"== deleted {label}: {seen}")

    # ------------------------------------------------------------------ runs
    def pipeline(self, project, keep):
        """The four stacks of one pipeline, outputs passed on as the lifecycle workflow would."""
        pipeline = f"pipeline-{project}"
        name = lambda level: f"clickstream-{project.replace('_', '-')}-{level}"
        tags = {"clickstream:pipeline-id": pipeline, "clickstream:project-id": project}
        common = {"PipelineId": pipeline, "ProjectId": project}
        created = []

        def delete_all(strict):
            for stack_id, label in reversed(created):
                try:
                    self.delete(stack_id, label)
                except (CheckFailed, botocore.exceptions.ClientError) as error:
                    if strict:
                        raise
                    print(f"   (cleanup) {error}", file=sys.stderr)

        try:
            processing, out_p = self.create("processing", name("processing"), {**common, "EtlIntervalSeconds": "300", "RetentionDays": "365"}, tags)
            created.append((processing, name("processing")))
            ingestion, out_i = self.create("ingestion", name("ingestion"), {**common, "SinkType": "s3", "DataBucketName": out_p["DataBucketName"]}, tags)
            created.append((ingestion, name("ingestion")))
            self.expect(out_i["IngestEndpoint"].startswith(("http://", "https://")), f"IngestEndpoint is a URL: {out_i['IngestEndpoint']}")
            self.expect("KinesisStreamName" not in out_i, "no KinesisStreamName with SinkType=s3")
            self.inspect_access_logs(out_i, out_i.get("AccessLogsBucketName"), created_bucket=True)
            modeling, out_m = self.create("modeling", name("modeling"), {**common, "Engine": "athena", "DataBucketName": out_p["DataBucketName"]}, tags)
            created.append((modeling, name("modeling")))
            reporting, _ = self.create(
                "reporting",
                name("reporting"),
                {**common, "Engine": out_m["Engine"], "GlueDatabaseName": out_m["GlueDatabaseName"], "AthenaWorkGroupName": out_m["AthenaWorkGroupName"], "DataBucketName": out_p["DataBucketName"]},
                tags,
            )
            created.append((reporting, name("reporting")))
        except BaseException:
            delete_all(strict=False)
            raise
        if not keep:
            delete_all(strict=True)

    # ------------------------------------------------------------------ control plane
    @staticmethod
    def control_plane_name(project):
        # Short: moto does not shorten the names it generates (an RDS instance identifier
        # <stack>-TemporalDatabase-<suffix> must stay within 63 characters).
        return f"cp-{project.replace('_', '-')}"

    def control_plane(self, project, keep):
        """The control plane with its defaults (self-hosted Temporal, Cognito, a new VPC)."""
        name = self.control_plane_name(project)
        stack_id, outputs = self.create(CONTROL_PLANE, name, {}, {"clickstream:control-plane": name})
        try:
            self.inspect_control_plane(name, outputs, image="clickstream:latest")
            self.expect(outputs["ConsoleUrl"].startswith("http://") and outputs["TemporalAddress"] == f"http://temporal.{name}.internal:7233", "ConsoleUrl and TemporalAddress")
            self.expect("TemporalDatabaseEndpoint" in outputs and "UserPoolDomain" in outputs, "the Temporal database and the Cognito domain are outputs")
        except BaseException:
            self.delete(stack_id, name)
            raise
        if not keep:
            self.delete(stack_id, name)
            after = self.control_plane_leftovers(stack_id)
            print(f"   left after DeleteStack: {after}")
            self.expect(not any(after.values()), "nothing of the control plane left behind")

    def inspect_control_plane(self, name, outputs, image, console_env=None, config_check=None, tasks=True):
        """Its tables and (unless `tasks` is false) its tasks' CLICKSTREAM_* variables and
        configuration file."""
        ddb, ecs = self.client("dynamodb"), self.client("ecs")
        for output, suffix in (("ControlTableName", "control"), ("MetadataTableName", "metadata")):
            self.expect(outputs.get(output) == f"{name}-{suffix}", f"{output} {name}-{suffix}")
            table = ddb.describe_table(TableName=outputs[output])["Table"]
            keys = sorted((key["AttributeName"], key["KeyType"]) for key in table["KeySchema"])
            self.expect(keys == [("pk", "HASH"), ("sk", "RANGE")] and table["BillingModeSummary"]["BillingMode"] == "PAY_PER_REQUEST", f"{outputs[output]}: pk/sk, on demand")
        for role in ("console", "worker") if tasks else ():
            container = ecs.describe_task_definition(taskDefinition=f"{name}-{role}")["taskDefinition"]["containerDefinitions"][0]
            env = {variable["name"]: variable.get("value") for variable in container.get("environment") or [] if variable}
            config = tomllib.loads(env["CLICKSTREAM_CONFIG_TOML"])
            stack_parameters = config["control"]["stack_parameters"]
            processing, ingestion = stack_parameters["processing"], stack_parameters["ingestion"]
            self.expect(processing["WorkerImage"] == image and ingestion["IngestImage"] == image, f"{role}: the pipeline stacks get the image {image}")
            self.expect(processing["VpcId"] == outputs["VpcId"] and processing["SubnetIds"] == outputs["SubnetIds"], f"{role}: the pipelines' workers run in the control plane's network")
            if config_check:
                config_check(config)
            expected = {
                "CLICKSTREAM_CONFIG": "/tmp/clickstream.toml",
                "CLICKSTREAM_CONTROL__STORE": "dynamodb",
                "CLICKSTREAM_CONTROL__DYNAMODB_TABLE": outputs["ControlTableName"],
                "CLICKSTREAM_CONTROL__PROVISIONER": "cloudformation",
                "CLICKSTREAM_CONTROL__TEMPLATES_DIR": "/usr/share/clickstream/cloudformation",
                "CLICKSTREAM_METADATA__STORE": "dynamodb",
                "CLICKSTREAM_METADATA__DYNAMODB_TABLE": outputs["MetadataTableName"],
                "CLICKSTREAM_TEMPORAL__ADDRESS": outputs["TemporalAddress"],
                "CLICKSTREAM_TEMPORAL__TASK_QUEUE": "clickstream-control",
                **((console_env or {}) if role == "console" else {}),
            }
            wrong = {key: env.get(key) for key, value in expected.items() if env.get(key) != value}
            self.expect(container["image"] == image and not wrong, f"{role} task: image and settings ({wrong or 'all as expected'})")

    def control_plane_leftovers(self, stack_id):
        """The control plane's tables, log group and roles. (moto never deletes the
        AWS::IAM::ManagedPolicy resources of a stack: not checked.)"""
        ddb, logs, iam = self.client("dynamodb"), self.client("logs"), self.client("iam")
        name = stack_id.split("/")[1]
        return {
            "tables": [table for table in ddb.list_tables()["TableNames"] if table in (f"{name}-control", f"{name}-metadata")],
            "log_groups": [g["logGroupName"] for g in logs.describe_log_groups(logGroupNamePrefix=f"/clickstream-control-plane/{name}")["logGroups"]],
            "roles": [r["RoleName"] for r in iam.list_roles()["Roles"] if r["RoleName"].startswith(name[:20])],
        }

    def control_plane_variants(self, project):
        """Temporal Cloud with an external OIDC issuer in an existing VPC; Cognito over HTTPS;
        no sign-in behind an internal load balancer, with a permissions boundary and extra
        configuration."""
        ec2, acm, iam = self.client("ec2"), self.client("acm"), self.client("iam")
        region = self.cf.meta.region_name
        vpc = ec2.create_vpc(CidrBlock="10.78.0.0/16")["Vpc"]["VpcId"]
        subnets = [ec2.create_subnet(VpcId=vpc, CidrBlock=f"10.78.{i}.0/24", AvailabilityZone=f"{region}{az}")["Subnet"]["SubnetId"] for i, az in enumerate("ab")]
        public = [ec2.create_subnet(VpcId=vpc, CidrBlock=f"10.78.{i + 10}.0/24", AvailabilityZone=f"{region}{az}")["Subnet"]["SubnetId"] for i, az in enumerate("ab")]
        certificate = acm.request_certificate(DomainName="console.example.com")["CertificateArn"]
        boundary = iam.create_policy(PolicyName=f"boundary-{project}", PolicyDocument='{"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}]}')["Policy"]["Arn"]
        secret = f"arn:aws:secretsmanager:{region}:123456789012:secret:temporal-client"
        extra = '[warehouse.redshift]\nworkgroup_name = "clickstream"\ndatabase = "dev"\n\n[control.stack_parameters.reporting]\nQuickSightPrincipalArn = "arn:aws:quicksight:us-east-1:123456789012:group/default/analysts"\n'

        def cloud_oidc(outputs, name):
            self.expect(outputs["TemporalAddress"] == "https://ns.acct.tmprl.cloud:7233" and "TemporalDatabaseEndpoint" not in outputs, "Temporal Cloud, no database")
            self.expect(outputs["OidcIssuer"] == "https://login.example.com/realms/shop" and "UserPoolDomain" not in outputs, "the external issuer, no user pool")
            self.expect(outputs["VpcId"] == vpc and outputs["SubnetIds"] == ",".join(subnets), "the given network")
            container = self.client("ecs").describe_task_definition(taskDefinition=f"{name}-worker")["taskDefinition"]["containerDefinitions"][0]
            secrets = sorted(s["name"] for s in container.get("secrets") or [] if s)
            self.expect(secrets == ["TEMPORAL_TLS_CLIENT_CERT_DATA", "TEMPORAL_TLS_CLIENT_KEY_DATA"], f"the mTLS client certificate and key as secrets ({secrets})")

        def cognito(outputs, name):
            self.expect(outputs["ConsoleUrl"] == "https://console.example.com", "ConsoleUrl https://console.example.com")
            self.expect(outputs["UserPoolDomain"] == f"https://clickstream-check.auth.{region}.amazoncognito.com", "UserPoolDomain")
            elbv2 = self.client("elbv2")
            arn = next(lb["LoadBalancerArn"] for lb in elbv2.describe_load_balancers()["LoadBalancers"] if lb["DNSName"] == outputs["LoadBalancerDnsName"])
            ports = sorted(listener["Port"] for listener in elbv2.describe_listeners(LoadBalancerArn=arn)["Listeners"])
            self.expect(ports == [80, 443], f"HTTP (redirect) and HTTPS listeners ({ports})")

        def internal(outputs, name):
            self.expect("OidcIssuer" not in outputs and "UserPoolId" not in outputs, "no issuer")
            self.expect(outputs["TemporalUiUrl"] == "https://temporal.example.com", "TemporalUiUrl as given")

        def internal_config(config):
            self.expect(config["warehouse"]["redshift"]["workgroup_name"] == "clickstream", "ExtraConfigToml reaches the configuration file")
            self.expect(config["control"]["stack_parameters"]["processing"]["PermissionsBoundaryArn"] == boundary, "the pipeline stacks get the permissions boundary")
            self.expect("QuickSightPrincipalArn" in config["control"]["stack_parameters"]["reporting"], "stack parameters of other templates from ExtraConfigToml")

        cases = [
            (
                {"TemporalMode": "cloud", "TemporalAddress": "https://ns.acct.tmprl.cloud:7233", "TemporalNamespace": "ns.acct", "TemporalTlsCertSecretArn": f"{secret}-cert-AbCdEf", "TemporalTlsKeySecretArn": f"{secret}-key-AbCdEf",
                 "AuthMode": "oidc", "OidcIssuerUrl": "https://login.example.com/realms/shop", "OidcClientId": "clickstream-console", "OidcRolesClaim": "realm_access.roles",
                 "VpcId": vpc, "SubnetIds": ",".join(subnets), "LoadBalancerSubnetIds": ",".join(public), "AssignPublicIp": "DISABLED", "WorkerCount": "2"},
                {"CLICKSTREAM_CONSOLE__OIDC__ENABLED": "true", "CLICKSTREAM_CONSOLE__OIDC__ISSUER": "https://login.example.com/realms/shop", "CLICKSTREAM_CONSOLE__OIDC__CLIENT_ID": "clickstream-console",
                 "CLICKSTREAM_CONSOLE__OIDC__ROLES_CLAIM": "realm_access.roles", "CLICKSTREAM_TEMPORAL__NAMESPACE": "ns.acct", "CLICKSTREAM_CONSOLE__TEMPORAL_UI_URL": "https://cloud.temporal.io"},
                cloud_oidc,
                lambda config: (
                    self.expect(config["control"]["stack_parameters"]["ingestion"]["SubnetIds"] == ",".join(public), "the collectors get the load balancer subnets"),
                    self.expect(config["control"]["stack_parameters"]["processing"]["TemporalTlsCertSecretArn"] == f"{secret}-cert-AbCdEf"
                                and config["control"]["stack_parameters"]["processing"]["TemporalTlsKeySecretArn"] == f"{secret}-key-AbCdEf", "the pipelines' workers get the Temporal Cloud certificate"),
                ),
            ),
            (
                {"AuthMode": "cognito", "CertificateArn": certificate, "ConsoleDomainName": "console.example.com", "CognitoDomainPrefix": "clickstream-check", "TemporalNamespace": "clickstream"},
                {"CLICKSTREAM_CONSOLE__OIDC__ENABLED": "true", "CLICKSTREAM_CONSOLE__OIDC__ROLES_CLAIM": "cognito:groups", "CLICKSTREAM_CONSOLE__OIDC__SCOPES": "openid email profile", "CLICKSTREAM_TEMPORAL__NAMESPACE": "clickstream"},
                cognito,
                None,
            ),
            (
                {"AuthMode": "none", "LoadBalancerScheme": "internal", "StackPrefix": "acme", "PermissionsBoundaryArn": boundary, "ExtraConfigToml": extra, "TemporalUiUrl": "https://temporal.example.com"},
                {"CLICKSTREAM_CONSOLE__OIDC__ENABLED": "false", "CLICKSTREAM_CONTROL__STACK_PREFIX": "acme", "CLICKSTREAM_CONSOLE__TEMPORAL_UI_URL": "https://temporal.example.com"},
                internal,
                internal_config,
            ),
        ]
        for number, (parameters, console_env, check_outputs, check_config) in enumerate(cases, 1):
            name = f"{self.control_plane_name(project)}-variant{number}"
            stack_id, outputs = self.create(CONTROL_PLANE, name, parameters, {})
            try:
                self.inspect_control_plane(name, outputs, image="clickstream:latest", console_env=console_env, config_check=check_config)
                check_outputs(outputs, name)
            finally:
                self.delete(stack_id, name)
            after = self.control_plane_leftovers(stack_id)
            self.expect(not any(after.values()), f"nothing of {name} left behind")

    def control_plane_updates(self, project):
        """A new image tag and more workers (an upgrade), then an update without changes."""
        name = f"{self.control_plane_name(project)}-update"
        stack_id, _ = self.create(CONTROL_PLANE, name, {}, {})
        try:
            outputs = self.update(stack_id, CONTROL_PLANE, {"ImageUri": "clickstream:v2", "WorkerCount": "2"}, "ImageUri=clickstream:v2 WorkerCount=2")
            # moto 5.2.5 registers the new task definition revisions, but with empty
            # containers (it passes the template's PascalCase keys to its camelCase API):
            # only the revisions are checked (the variants check what the containers get).
            self.inspect_control_plane(name, outputs, image="clickstream:v2", tasks=False)
            ecs = self.client("ecs")
            revisions = {role: ecs.describe_task_definition(taskDefinition=f"{name}-{role}")["taskDefinition"]["revision"] for role in ("console", "worker")}
            self.expect(revisions == {"console": 2, "worker": 2}, f"new task definition revisions ({revisions})")
            self.expect_no_op_update_refused(stack_id, CONTROL_PLANE)
        finally:
            self.delete(stack_id, name)

    def control_plane_failure_mode(self, project):
        name = f"{self.control_plane_name(project)}-failing"
        self.failing_creation(CONTROL_PLANE, name, {"PermissionsBoundaryArn": "not-an-arn"}, "InvalidParameterValue", self.control_plane_leftovers)

    def variants(self, project):
        ec2 = self.client("ec2")
        vpc = ec2.create_vpc(CidrBlock="10.77.0.0/16")["Vpc"]["VpcId"]
        subnets = [
            ec2.create_subnet(VpcId=vpc, CidrBlock=f"10.77.{i}.0/24", AvailabilityZone=f"{self.cf.meta.region_name}{az}")["Subnet"]["SubnetId"]
            for i, az in enumerate("ab")
        ]
        common = {"PipelineId": f"pipeline-{project}", "ProjectId": project}
        cases = [
            ("ingestion", {"SinkType": "kinesis", "KinesisShardCount": "2", "DataBucketName": "clickstream-check-data", "AppIds": "web_app,ios_app"}, ["KinesisStreamName"]),
            ("ingestion", {"SinkType": "kafka", "KafkaTopic": "events", "KafkaBrokers": "b-1.msk:9092,b-2.msk:9092", "DataBucketName": "clickstream-check-data", "EnableAutoScaling": "false"}, []),
            ("ingestion", {"VpcId": vpc, "SubnetIds": ",".join(subnets), "IngestDomainName": "collect.example.com", "DesiredCount": "2", "CorsAllowedOrigins": "https://shop.example.com,https://*.example.com",
                           "AccessLogsBucketName": "central-access-logs"}, ["AccessLogsBucketName"]),
            ("ingestion", {"EnableAccessLogs": "false"}, []),
            # No brokers: the stack creates an MSK cluster (inspected below).
            ("ingestion", {"SinkType": "kafka", "VpcId": vpc, "SubnetIds": ",".join(subnets), "DataBucketName": "clickstream-check-data", "KafkaTopicPartitions": "6",
                           "MskBrokerInstanceType": "kafka.t3.small"}, ["MskClusterArn"]),
            ("processing", {"DataBucketName": f"clickstream-{project.replace('_', '-')}-data", "AppIds": "web_app", "TemporalAddress": "https://ns.tmprl.cloud:7233",
                            "TemporalTlsCertSecretArn": f"arn:aws:secretsmanager:{self.cf.meta.region_name}:123456789012:secret:clickstream/temporal-client-cert-AbCdEf",
                            "TemporalTlsKeySecretArn": f"arn:aws:secretsmanager:{self.cf.meta.region_name}:123456789012:secret:clickstream/temporal-client-key-AbCdEf"}, []),
            ("processing", {"VpcId": vpc, "SubnetIds": ",".join(subnets), "WorkerCount": "2"}, []),
            ("processing", {"Warehouse": "redshift", "RedshiftWorkgroupName": "clickstream", "RedshiftCopyRoleArn": "arn:aws:iam::123456789012:role/clickstream-copy-x",
                            "RedshiftSecretArn": f"arn:aws:secretsmanager:{self.cf.meta.region_name}:123456789012:secret:clickstream/redshift-AbCdEf"}, ["EtlTaskQueue", "Warehouse"]),
            ("modeling", {"Engine": "redshift", "RedshiftWorkgroupName": "clickstream", "DataBucketName": "clickstream-check-data", "EnableAthena": "true"}, ["RedshiftCopyRoleArn", "GlueDatabaseName"]),
            ("modeling", {"Engine": "redshift", "CreateRedshiftServerless": "true"}, ["RedshiftWorkgroupName"]),
            ("modeling", {"Engine": "none"}, []),
            ("reporting", {"Engine": "redshift", "RedshiftWorkgroupName": "clickstream", "QuickSightPrincipalArn": f"arn:aws:quicksight:{self.cf.meta.region_name}:123456789012:user/default/admin"}, ["QuickSightPrincipalArn", "DataSourceRoleArn"]),
            ("reporting", {"Engine": "none"}, []),
        ]
        for number, (template, extra, expected_outputs) in enumerate(cases, 1):
            label = f"clickstream-{project.replace('_', '-')}-{template}-variant{number}"
            stack_id, outputs = self.create(template, label, {**common, **extra}, {})
            try:
                for key in expected_outputs:
                    self.expect(key in outputs, f"output {key} present")
                if "MskClusterArn" in outputs:
                    self.inspect_msk_buffer(project, outputs, subnets)
                if template == "ingestion":
                    self.inspect_access_logs(outputs, outputs.get("AccessLogsBucketName"), created_bucket="AccessLogsBucketName" not in extra)
            finally:
                self.delete(stack_id, label)
            if "MskClusterArn" in outputs:
                clusters = [cluster["ClusterArn"] for cluster in self.client("kafka").list_clusters()["ClusterInfoList"]]
                self.expect(outputs["MskClusterArn"] not in clusters, "the MSK cluster is deleted with its stack")

    def inspect_access_logs(self, outputs, bucket, created_bucket):
        """The collector's ALB writes access logs to `bucket` (None: no access logs), which
        exists when the stack created it. (moto 5.2.5 ignores the bucket's lifecycle rule, and
        the ALB's attributes unless moto_cfn_fixes.apply() ran.)"""
        elb = self.client("elbv2")
        balancers = elb.describe_load_balancers()["LoadBalancers"]
        balancer = next(b["LoadBalancerArn"] for b in balancers if b["DNSName"] == outputs["LoadBalancerDnsName"])
        attributes = {a["Key"]: a["Value"] for a in elb.describe_load_balancer_attributes(LoadBalancerArn=balancer)["Attributes"]}
        if bucket is None:
            self.expect(attributes.get("access_logs.s3.enabled") == "false", "no ALB access logs")
            return
        self.expect(attributes.get("access_logs.s3.enabled") == "true" and attributes.get("access_logs.s3.bucket") == bucket, f"ALB access logs to {bucket} ({ {k: v for k, v in attributes.items() if k.startswith('access_logs')} })")
        if created_bucket:
            self.client("s3").head_bucket(Bucket=bucket)
            self.expect(True, f"the access logs bucket {bucket} exists")

    def inspect_msk_buffer(self, project, outputs, subnets):
        """The ingestion stack's own MSK cluster: in the first two subnets, reachable from the
        collector's security group, and the collector and bridge are given its ARN instead of
        brokers. Needs moto started through e2e/src/moto_server.py (moto_cfn_fixes.apply()
        adds AWS::MSK::Cluster, which moto 5.2.5's CloudFormation skips)."""
        cluster_arn = outputs["MskClusterArn"]
        try:
            cluster = self.client("kafka").describe_cluster(ClusterArn=cluster_arn)["ClusterInfo"]
        except botocore.exceptions.ClientError as error:
            raise CheckFailed(f"MSK cluster {cluster_arn!r} is not in moto ({error}): start moto through e2e/src/moto_server.py, whose moto_cfn_fixes model AWS::MSK::Cluster")
        nodes = cluster["BrokerNodeGroupInfo"]
        self.expect(nodes["ClientSubnets"] == subnets[:2] and nodes["InstanceType"] == "kafka.t3.small" and cluster["NumberOfBrokerNodes"] == 2, "MSK brokers: two kafka.t3.small in the first two subnets")
        self.expect(cluster["EncryptionInfo"]["EncryptionInTransit"] == {"ClientBroker": "TLS_PLAINTEXT", "InCluster": True}, "MSK: plaintext listener for the clients, TLS between brokers")
        groups = self.client("ec2").describe_security_groups(GroupIds=nodes["SecurityGroups"])["SecurityGroups"]
        sources = {(rule["FromPort"], pair["GroupId"]) for group in groups for rule in group["IpPermissions"] for pair in rule.get("UserIdGroupPairs", [])}
        self.expect(sources == {(9092, outputs["ServiceSecurityGroupId"])}, "MSK: port 9092 open to the collector's and bridge's security group only")
        ecs = self.client("ecs")
        for role in ("ingest", "bridge"):
            container = ecs.describe_task_definition(taskDefinition=f"clickstream-{project}-{role}")["taskDefinition"]["containerDefinitions"][0]
            env = {variable["name"]: variable.get("value") for variable in container.get("environment") or [] if variable}
            self.expect(env.get("CLICKSTREAM_KAFKA__MSK_CLUSTER_ARN") == cluster_arn and "CLICKSTREAM_KAFKA__BROKERS" not in env, f"{role}: asks MSK for the brokers of {cluster_arn}")
            if role == "ingest":
                # str(): moto keeps a Number parameter's value a number where ECS has strings.
                topic = tuple(str(env.get(f"CLICKSTREAM_KAFKA__TOPIC_{key}")) for key in ("PARTITIONS", "REPLICATION_FACTOR", "RETENTION_HOURS"))
                self.expect(topic == ("6", "-1", "24"), f"ingest: topics with 6 partitions, the cluster's replication factor, a day's retention ({topic})")

    def expect_no_op_update_refused(self, stack_id, template):
        """Every parameter again with its current value: CloudFormation must refuse the update."""
        current = self.cf.describe_stacks(StackName=stack_id)["Stacks"][0]["Parameters"]
        try:
            self.cf.update_stack(StackName=stack_id, TemplateBody=template_body(template), Parameters=[{"ParameterKey": p["ParameterKey"], "UsePreviousValue": True} for p in current], Capabilities=CAPABILITIES)
            raise CheckFailed("an update without changes was accepted")
        except botocore.exceptions.ClientError as error:
            code, message, http = error_of(error)
            print(f"   update without changes: HTTP {http} {code}: {message}")
            self.expect(code == "ValidationError" and message == "No updates are to be performed.", "ValidationError 'No updates are to be performed.'")

    def update(self, stack_id, template, parameters, label):
        self.started = time.monotonic()
        self.cf.update_stack(
            StackName=stack_id,
            TemplateBody=template_body(template),
            Parameters=[{"ParameterKey": k, "ParameterValue": v} for k, v in parameters.items()],
            Capabilities=CAPABILITIES,
        )
        stack, seen = self.wait(stack_id, "UPDATE_COMPLETE")
        outputs = {o["OutputKey"]: o["OutputValue"] for o in stack.get("Outputs") or []}
        print(f"   update {label}: {seen}")
        return outputs

    def updates(self, project):
        """UpdateStack with the changes a pipeline update makes (ones moto 5.2.5 handles as it is)."""
        common = {"PipelineId": f"pipeline-{project}", "ProjectId": project}
        ssm = self.client("ssm")
        config = lambda level: ssm.get_parameter(Name=f"/clickstream/{project}/{level}/config")["Parameter"]["Value"]
        base = f"clickstream-{project.replace('_', '-')}"

        stack_id, _ = self.create("processing", f"{base}-processing-update", common, {})
        try:
            self.update(stack_id, "processing", {**common, "EtlIntervalSeconds": "900", "RetentionDays": "30", "WorkerImage": "clickstream:v2"}, "EtlIntervalSeconds=900 RetentionDays=30 WorkerImage=clickstream:v2")
            self.expect("etl_interval_seconds = 900" in config("processing") and "retention_days = 30" in config("processing"), "the worker's settings follow")
            # Every parameter again, with its current value: nothing changes.
            self.expect_no_op_update_refused(stack_id, "processing")
        finally:
            self.delete(stack_id, f"{base}-processing-update")

        stack_id, _ = self.create("ingestion", f"{base}-ingestion-update", {**common, "DataBucketName": "clickstream-check-data"}, {})
        try:
            outputs = self.update(stack_id, "ingestion", {**common, "DataBucketName": "clickstream-check-data", "SinkType": "kinesis", "KinesisShardCount": "2", "DesiredCount": "2"}, "SinkType=kinesis KinesisShardCount=2 DesiredCount=2")
            self.expect(outputs.get("KinesisStreamName") == f"clickstream-{project}", "KinesisStreamName output")
            self.expect('sink = "kinesis"' in config("ingestion"), "the collector's settings follow")
        finally:
            self.delete(stack_id, f"{base}-ingestion-update")

        stack_id, _ = self.create("modeling", f"{base}-modeling-update", common, {})
        try:
            outputs = self.update(stack_id, "modeling", {**common, "Engine": "redshift", "RedshiftWorkgroupName": "clickstream"}, "Engine=redshift")
            self.expect(outputs.get("RedshiftWorkgroupName") == "clickstream" and "RedshiftCopyRoleArn" in outputs, "Redshift outputs")
            self.expect('workgroup_name = "clickstream"' in config("modeling"), "the warehouse settings follow")
        finally:
            self.delete(stack_id, f"{base}-modeling-update")

        stack_id, _ = self.create("reporting", f"{base}-reporting-update", common, {})
        try:
            principal = f"arn:aws:quicksight:{self.cf.meta.region_name}:123456789012:group/default/analysts"
            outputs = self.update(stack_id, "reporting", {**common, "QuickSightPrincipalArn": principal}, "QuickSightPrincipalArn")
            self.expect(outputs.get("QuickSightPrincipalArn") == principal and principal in config("reporting"), "the principal follows")
        finally:
            self.delete(stack_id, f"{base}-reporting-update")

    def failure_modes(self, project):
        """The documented failing values: CreateStack refused, stack left CREATE_IN_PROGRESS, DeleteStack cleans up."""
        common = {"PipelineId": f"pipeline-{project}", "ProjectId": project}
        cases = [
            ("processing", {"DataBucketName": "ab"}, "InvalidBucketName"),
            ("ingestion", {"PermissionsBoundaryArn": "not-an-arn"}, "InvalidParameterValue"),
            ("modeling", {"Engine": "redshift", "PermissionsBoundaryArn": "not-an-arn"}, "InvalidParameterValue"),
            ("reporting", {"PermissionsBoundaryArn": "not-an-arn"}, "InvalidParameterValue"),
        ]
        for template, extra, expected_code in cases:
            label = f"clickstream-{project.replace('_', '-')}-{template}-failing"
            self.failing_creation(template, label, {**common, **extra}, expected_code, lambda stack_id: self.leftovers(project, stack_id))

    def failing_creation(self, template, label, parameters, expected_code, leftovers):
        """CreateStack with a documented failing value: refused (moto as it is) or rolled back
        (AWS, or moto with moto_cfn_fixes.apply_create_rollback()); DeleteStack then leaves
        nothing that `leftovers(stack_id)` finds."""
        print(f"\n== failure mode: {template}.yaml with {parameters}")
        try:
            stack_id = self.start_creation(template, label, parameters)
        except botocore.exceptions.ClientError as error:
            # moto 5.2.5 as it is: the failed resource's error comes back from CreateStack
            # and the stack stays CREATE_IN_PROGRESS.
            code, message, http = error_of(error)
            print(f"   CreateStack refused: HTTP {http} {code}: {message}")
            self.expect(code == expected_code, f"error code {expected_code}")
            listed = [s for s in self.cf.list_stacks()["StackSummaries"] if s["StackName"] == label and s["StackStatus"] != "DELETE_COMPLETE"]
            print(f"   ListStacks: {[(s['StackName'], s['StackStatus']) for s in listed]}")
            self.expect(len(listed) == 1 and listed[0]["StackStatus"] == "CREATE_IN_PROGRESS", "the stack is listed, CREATE_IN_PROGRESS")
            stack_id = listed[0]["StackId"]
            status = self.cf.describe_stacks(StackName=stack_id)["Stacks"][0]["StackStatus"]
            print(f"   DescribeStacks: {status}")
        else:
            # moto with moto_cfn_fixes.apply_create_rollback(), or AWS: CreateStack accepted,
            # then CREATE_FAILED on the resource and the stack rolled back.
            stack, seen = self.wait(stack_id, "ROLLBACK_COMPLETE")
            print(f"   CreateStack accepted; statuses: {seen}; reason: {stack.get('StackStatusReason')}")
            failed = [e for e in self.cf.describe_stack_events(StackName=stack_id)["StackEvents"] if e["ResourceStatus"] == "CREATE_FAILED"]
            for event in failed:
                print(f"   event {event['LogicalResourceId']} {event['ResourceType']} CREATE_FAILED: {event.get('ResourceStatusReason')}")
            self.expect(any(expected_code in (e.get("ResourceStatusReason") or "") for e in failed), f"a CREATE_FAILED event naming {expected_code}")
        before = leftovers(stack_id)
        print(f"   created before the failure (or lazily by DescribeStacks): {before}")
        self.delete(stack_id, label)
        after = leftovers(stack_id)
        print(f"   left after DeleteStack: {after}")
        self.expect(not any(after.values()), "nothing of the stack left behind")

    def leftovers(self, project, stack_id):
        """The project's log groups and SSM parameters, and the stack's roles (named after the
        stack name by CloudFormation, or after the stack id's uuid by modeling/reporting)."""
        logs, ssm, iam = self.client("logs"), self.client("ssm"), self.client("iam")
        stack_name, stack_uuid = stack_id.split("/")[1], stack_id.split("/")[2]
        return {
            "log_groups": [g["logGroupName"] for g in logs.describe_log_groups(logGroupNamePrefix=f"/clickstream/{project}/")["logGroups"]],
            "ssm_parameters": [p["Name"] for p in ssm.get_parameters_by_path(Path=f"/clickstream/{project}", Recursive=True)["Parameters"]],
            "roles": [r["RoleName"] for r in iam.list_roles()["Roles"] if r["RoleName"].startswith(stack_name[:20]) or stack_uuid in r["RoleName"]],
        }

    @staticmethod
    def expect(condition, what):
        if not condition:
            raise CheckFailed(f"expected: {what}")
        print(f"   ok: {what}")


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--endpoint", required=True, help="moto server, e.g. http://127.0.0.1:15731")
    parser.add_argument("--region", default="us-east-1")
    parser.add_argument("--project-id", default="check_" + "".join(random.choices(string.ascii_lowercase + string.digits, k=6)), help="project id of the sample pipeline (random by default)")
    parser.add_argument("--timeout", type=float, default=60.0, help="seconds to wait for a stack status")
    parser.add_argument("--variants", action="store_true")
    parser.add_argument("--failure-modes", action="store_true")
    parser.add_argument("--updates", action="store_true")
    parser.add_argument("--keep", action="store_true")
    arguments = parser.parse_args()

    checker = Checker(arguments.endpoint, arguments.region, arguments.timeout)
    try:
        checker.control_plane(arguments.project_id, arguments.keep)
        checker.pipeline(arguments.project_id, arguments.keep)
        if arguments.variants:
            checker.control_plane_variants(arguments.project_id)
            checker.variants(arguments.project_id)
        if arguments.updates:
            checker.control_plane_updates(arguments.project_id)
            checker.updates(arguments.project_id)
        if arguments.failure_modes:
            checker.control_plane_failure_mode(arguments.project_id)
            checker.failure_modes(arguments.project_id)
    except CheckFailed as failure:
        print(f"\nFAILED: {failure}", file=sys.stderr)
        return 1
    except (botocore.exceptions.BotoCoreError, botocore.exceptions.ClientError) as error:
        print(f"\nFAILED: {error}", file=sys.stderr)
        return 1
    print("\nall stacks created and deleted as expected")
    return 0


if __name__ == "__main__":
    sys.exit(main())
