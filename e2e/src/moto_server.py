"""moto_server with the Redshift Data API made usable by the Rust SDK and by a load workflow.

moto 5.2.5's Redshift Data API is a stub that only records calls, and in a shape the AWS SDK
for Rust rejects. This wrapper, started by the test harness instead of `moto_server`:

- answers `CreatedAt`/`UpdatedAt` as epoch seconds (moto sends ISO strings; the Rust SDK
  expects numbers, as AWS sends them);
- implements `BatchExecuteStatement` (moto lacks it): the statement records its SQL as
  sub-statements `<id>:<n>`, honours `ClientToken` (the same token returns the same statement),
  and `DescribeStatement` shows them;
- lets statements finish: `STARTED` until CLICKSTREAM_MOTO_STATEMENT_SECONDS (default 1.5)
  have passed since submission, `FINISHED` after, so callers really poll. Nothing is executed:
  DDL and COPY report -1 rows, other statements 0;
- answers `GetStatementResult` (moto's fixed three rows) with `nullable` as the number the
  API defines (0 not nullable, 1 nullable) instead of a boolean, which the Rust SDK rejects.

It also completes moto's QuickSight, which keeps data sources but only creates data sets and
dashboards and has no templates or analyses: data sets, templates, analyses and dashboards
are kept here as the request documents that created or last updated them, with
create (409 `ResourceExistsException` when the id is taken), describe, update and delete
(404 `ResourceNotFoundException` when missing), and the dashboards' versions (an update adds
one; `UpdateDashboardPublishedVersion` publishes one). Nothing is rendered or queried.
moto's own data source answers get their `CreatedTime`/`LastUpdatedTime` as epoch seconds
(moto sends ISO strings, which the Rust SDK rejects).

And it makes moto's Kinesis resharding (`SplitShard`, `MergeShards`, `UpdateShardCount`)
behave as AWS documents it, so that a reader following a reshard can be tested:
- a closed shard keeps its records (moto moves them into the children, renumbered), and new
  records go only to open shards (moto keeps routing them to the closed parent);
- `GetRecords` on a closed shard read to its end answers no `NextShardIterator` (moto always
  gives one), which is how a reader learns that the shard is done.

It answers MSK's `GetBootstrapBrokers` (moto has the clusters but not this call), with the
plaintext brokers in CLICKSTREAM_MOTO_MSK_BROKERS (a test points them at its Kafka broker),
else with made-up names shaped like AWS's; a cluster moto does not have gets 404
NotFoundException, as on AWS.

Finally it applies `infra/cloudformation/moto_cfn_fixes.apply()`, so that stack updates (the
pipeline lifecycle's) behave as on CloudFormation, and AWS::MSK::Cluster resources exist.
"""

import datetime
import json
import os
import sys
import threading
import time

from urllib.parse import unquote

from moto.kafka import responses as kafka_responses
from moto.kafka import urls as kafka_urls
from moto.kinesis import models as kinesis_models
from moto.quicksight import responses as quicksight_responses
from moto.quicksight import urls as quicksight_urls
from moto.redshiftdata import models, responses
from moto.server import main

import moto_cfn_fixes  # noqa: E402  (written next to this file by the test harness)

moto_cfn_fixes.apply()

STATEMENT_SECONDS = float(os.environ.get("CLICKSTREAM_MOTO_STATEMENT_SECONDS", "1.5"))
STATEMENTS_BY_TOKEN = {}


def _result_rows(sql):
    first_word = sql.strip().split(None, 1)[0].upper() if sql.strip() else ""
    return -1 if first_word in ("CREATE", "COPY", "DROP", "LOCK", "ALTER") else 0


def _progress(statement):
    if statement.status == "STARTED" and time.time() - statement.submitted_at >= STATEMENT_SECONDS:
        statement.status = "FINISHED"
        statement.finished_at = time.time()


def _describe(statement):
    _progress(statement)
    document = dict(statement)
    updated = getattr(statement, "finished_at", statement.submitted_at)
    document["CreatedAt"] = statement.submitted_at
    document["UpdatedAt"] = updated
    document["SubStatements"] = [
        {
            "Id": f"{statement.id}:{index + 1}",
            "QueryString": sql,
            "Status": statement.status,
            "CreatedAt": statement.submitted_at,
            "UpdatedAt": updated,
            "Duration": 0,
            "HasResultSet": sql.lstrip().upper().startswith("SELECT"),
            "ResultRows": _result_rows(sql) if statement.status == "FINISHED" else -1,
            "ResultSize": -1,
            "RedshiftQueryId": 0,
        }
        for index, sql in enumerate(getattr(statement, "sqls", []))
    ]
    return document


def describe_statement(self):
    statement_id = self._get_param("Id")
    statement = self.redshiftdata_backend.describe_statement(statement_id=statement_id)
    if not hasattr(statement, "submitted_at"):
        statement.submitted_at = time.time()
    return 200, {}, json.dumps(_describe(statement))


def execute_statement(self):
    status, headers, body = ORIGINAL_EXECUTE(self)
    document = json.loads(body)
    statement = self.redshiftdata_backend.statements[document["Id"]]
    statement.submitted_at = time.time()
    statement.sqls = [self._get_param("Sql")]
    document["CreatedAt"] = statement.submitted_at
    return status, headers, json.dumps(document)


def batch_execute_statement(self):
    token = self._get_param("ClientToken")
    backend = self.redshiftdata_backend
    statement = backend.statements.get(STATEMENTS_BY_TOKEN.get(token)) if token else None
    if statement is None:
        sqls = self._get_param("Sqls") or []
        statement = models.Statement(
            cluster_identifier=self._get_param("ClusterIdentifier"),
            database=self._get_param("Database"),
            db_user=self._get_param("DbUser"),
            query_parameters=[],
            query_string=";\n".join(sqls),
            secret_arn=self._get_param("SecretArn"),
        )
        statement.sqls = sqls
        statement.submitted_at = time.time()
        backend.statements[statement.id] = statement
        if token:
            STATEMENTS_BY_TOKEN[token] = statement.id
    return 200, {}, json.dumps(
        {
            "Id": statement.id,
            "CreatedAt": statement.submitted_at,
            "Database": statement.database,
            "ClusterIdentifier": statement.cluster_identifier,
            "WorkgroupName": self._get_param("WorkgroupName"),
        }
    )


def get_statement_result(self):
    status, headers, body = ORIGINAL_GET_RESULT(self)
    document = json.loads(body)
    for column in document.get("ColumnMetadata", []):
        if isinstance(column.get("nullable"), bool):
            column["nullable"] = 1 if column["nullable"] else 0
    return status, headers, json.dumps(document)


ORIGINAL_EXECUTE = responses.RedshiftDataAPIServiceResponse.execute_statement
ORIGINAL_GET_RESULT = responses.RedshiftDataAPIServiceResponse.get_statement_result
responses.RedshiftDataAPIServiceResponse.get_statement_result = get_statement_result
responses.RedshiftDataAPIServiceResponse.describe_statement = describe_statement
responses.RedshiftDataAPIServiceResponse.execute_statement = execute_statement
responses.RedshiftDataAPIServiceResponse.batch_execute_statement = batch_execute_statement

# QuickSight assets: kind -> (id parameter, URL segment, the Describe answer's key).
QUICKSIGHT_KINDS = {
    "data_set": ("DataSetId", "data-sets", "DataSet"),
    "template": ("TemplateId", "templates", "Template"),
    "analysis": ("AnalysisId", "analyses", "Analysis"),
    "dashboard": ("DashboardId", "dashboards", "Dashboard"),
}
QUICKSIGHT_ASSETS = {kind: {} for kind in QUICKSIGHT_KINDS}


def _quicksight_error(status, code, message):
    # moto takes a handler's HTTP status from its headers' `status`.
    return status, {"status": status, "x-amzn-ErrorType": code, "Content-Type": "application/json"}, json.dumps({"Message": message, "RequestId": "moto"})


def _quicksight_arn(self, kind, asset_id):
    segment = QUICKSIGHT_KINDS[kind][1].rstrip("s").replace("analyse", "analysis")
    region = self.region or "us-east-1"
    return f"arn:aws:quicksight:{region}:{self._get_param('AwsAccountId')}:{segment}/{asset_id}"


def _quicksight_document(self):
    document = json.loads(self.body or "{}")
    document.pop("AwsAccountId", None)
    return document


def _quicksight_handlers(kind):
    id_parameter, _, answer_key = QUICKSIGHT_KINDS[kind]
    assets = QUICKSIGHT_ASSETS[kind]

    def asset_id(self):
        return self._get_param(id_parameter) or json.loads(self.body or "{}").get(id_parameter)

    def created_answer(self, asset, status):
        answer = {"Arn": asset["Arn"], id_parameter: asset[id_parameter], "Status": status, "RequestId": "moto"}
        if kind != "data_set":
            answer["CreationStatus"] = "CREATION_SUCCESSFUL"
            answer["VersionArn"] = f"{asset['Arn']}/version/{asset['VersionNumber']}"
        return 200, {"Content-Type": "application/json"}, json.dumps(answer)

    def create(self):
        identifier = asset_id(self)
        if identifier in assets:
            return _quicksight_error(409, "ResourceExistsException", f"{kind} {identifier} already exists")
        asset = _quicksight_document(self)
        asset.update({id_parameter: identifier, "Arn": _quicksight_arn(self, kind, identifier), "VersionNumber": 1, "PublishedVersionNumber": 1,
                      "CreatedTime": time.time(), "LastUpdatedTime": time.time(), "Status": "CREATION_SUCCESSFUL"})
        assets[identifier] = asset
        return created_answer(self, asset, 201)

    def describe(self):
        identifier = asset_id(self)
        if identifier not in assets:
            return _quicksight_error(404, "ResourceNotFoundException", f"{kind} {identifier} does not exist")
        asset = dict(assets[identifier])
        if kind == "dashboard":
            asset["Version"] = {"VersionNumber": asset["PublishedVersionNumber"], "SourceEntityArn": asset.get("SourceEntity", {}).get("SourceTemplate", {}).get("Arn"), "Status": "CREATION_SUCCESSFUL"}
        return 200, {"Content-Type": "application/json"}, json.dumps({answer_key: asset, "Status": 200, "RequestId": "moto"})

    def update(self):
        identifier = asset_id(self)
        if identifier not in assets:
            return _quicksight_error(404, "ResourceNotFoundException", f"{kind} {identifier} does not exist")
        asset = assets[identifier]
        asset.update(_quicksight_document(self))
        asset["VersionNumber"] += 1
        asset["LastUpdatedTime"] = time.time()
        if kind != "dashboard":
            asset["PublishedVersionNumber"] = asset["VersionNumber"]
        answer = created_answer(self, asset, 200)
        if kind == "data_set":
            return answer
        return answer

    def delete(self):
        identifier = asset_id(self)
        if assets.pop(identifier, None) is None:
            return _quicksight_error(404, "ResourceNotFoundException", f"{kind} {identifier} does not exist")
        return 200, {"Content-Type": "application/json"}, json.dumps({"Arn": _quicksight_arn(self, kind, identifier), id_parameter: identifier, "Status": 200, "RequestId": "moto"})

    return create, describe, update, delete


def _epoch_times(document):
    """ISO `...Time` strings of a moto answer as epoch seconds, at any depth."""
    if isinstance(document, dict):
        for key, value in document.items():
            if key.endswith("Time") and isinstance(value, str):
                document[key] = datetime.datetime.fromisoformat(value).replace(tzinfo=datetime.timezone.utc).timestamp()
            else:
                _epoch_times(value)
    elif isinstance(document, list):
        for value in document:
            _epoch_times(value)
    return document


def _with_epoch_times(original):
    def answer(self):
        body = original(self)
        if isinstance(body, tuple):
            status, headers, text = body
            return status, headers, json.dumps(_epoch_times(json.loads(text)))
        return json.dumps(_epoch_times(json.loads(body)))

    return answer


def update_dashboard_published_version(self):
    identifier = self._get_param("DashboardId")
    version = int(self._get_param("VersionNumber"))
    dashboard = QUICKSIGHT_ASSETS["dashboard"].get(identifier)
    if dashboard is None or version > dashboard["VersionNumber"]:
        return _quicksight_error(404, "ResourceNotFoundException", f"dashboard {identifier} version {version} does not exist")
    dashboard["PublishedVersionNumber"] = version
    return 200, {"Content-Type": "application/json"}, json.dumps({"DashboardId": identifier, "DashboardArn": dashboard["Arn"], "Status": 200, "RequestId": "moto"})


for _kind in QUICKSIGHT_KINDS:
    _create, _describe_asset, _update, _delete = _quicksight_handlers(_kind)
    setattr(quicksight_responses.QuickSightResponse, f"create_{_kind}", _create)
    setattr(quicksight_responses.QuickSightResponse, f"describe_{_kind}", _describe_asset)
    setattr(quicksight_responses.QuickSightResponse, f"update_{_kind}", _update)
    setattr(quicksight_responses.QuickSightResponse, f"delete_{_kind}", _delete)
quicksight_responses.QuickSightResponse.update_dashboard_published_version = update_dashboard_published_version
for _method in ("describe_data_source", "list_data_sources"):
    setattr(quicksight_responses.QuickSightResponse, _method, _with_epoch_times(getattr(quicksight_responses.QuickSightResponse, _method)))
_ACCOUNT_ASSETS = r"{0}/accounts/(?P<account_id>[^/]+)/(?P<kind>data-sets|templates|analyses|dashboards)/(?P<asset_id>[^/]+)$"
quicksight_urls.url_paths[_ACCOUNT_ASSETS] = quicksight_responses.QuickSightResponse.dispatch
quicksight_urls.url_paths[r"{0}/accounts/(?P<account_id>[^/]+)/dashboards/(?P<dashboard_id>[^/]+)/versions/(?P<version>[^/]+)$"] = quicksight_responses.QuickSightResponse.dispatch



def _open_shard_for_key(self, partition_key, explicit_hash_key):
    """moto's routing, over the open shards only. (Without swapping `self.shards`: moto serves
    requests on several threads, and a listing must always see every shard.)"""
    ORIGINAL_SHARD_FOR_KEY(self, partition_key, explicit_hash_key)  # moto's argument checks
    if explicit_hash_key:
        key = int(explicit_hash_key)
    else:
        key = int(kinesis_models.md5_hash(partition_key.encode("utf-8")).hexdigest(), 16)
    for shard in list(self.shards.values()):
        if shard.is_open and shard.starting_hash <= key <= shard.ending_hash:
            return shard
    return None


def _resharding_keeps_records(original, shard_arguments):
    """Runs moto's split or merge with the parents' records set aside, so nothing is copied
    into the children, then gives the parents their records back."""

    def reshard(self, *arguments):
        parents = [self.shards[shard_id] for shard_id in arguments[:shard_arguments] if shard_id in self.shards]
        kept = [(parent, parent.records) for parent in parents]
        for parent in parents:
            parent.records = kinesis_models.OrderedDict()
        try:
            return original(self, *arguments)
        finally:
            for parent, records in kept:
                parent.records = records

    return reshard


def _get_records_ending_closed_shards(self, stream_arn, shard_iterator, limit):
    next_iterator, records, millis_behind = ORIGINAL_GET_RECORDS(self, stream_arn, shard_iterator, limit)
    stream_name, shard_id, next_position = kinesis_models.decompose_shard_iterator(next_iterator)
    shard = self.describe_stream(stream_arn=stream_arn, stream_name=stream_name).get_shard(shard_id)
    if not shard.is_open and not records and int(next_position) >= shard.get_max_sequence_number():
        next_iterator = None
    return next_iterator, records, millis_behind


# moto serves requests on several threads and its Kinesis model has no lock: a reshard (which
# sets the parents' records aside for a moment) or a put must not interleave with a read or a
# listing. One lock over these operations makes each of them atomic, as they are on AWS.
KINESIS_LOCK = threading.RLock()


def get_bootstrap_brokers(self):
    cluster_arn = unquote(self.parsed_url.path.split("/clusters/")[-1].rsplit("/bootstrap-brokers", 1)[0])
    cluster = self.kafka_backend.clusters.get(cluster_arn)
    if cluster is None:
        headers = {"status": 404, "x-amzn-ErrorType": "NotFoundException", "Content-Type": "application/json"}
        return 404, headers, json.dumps({"message": f"Cluster {cluster_arn} does not exist."})
    brokers = os.environ.get("CLICKSTREAM_MOTO_MSK_BROKERS") or ",".join(
        f"b-{n}.{cluster.cluster_name}.moto.c2.kafka.{self.region}.amazonaws.com:9092" for n in (1, 2)
    )
    return 200, {"Content-Type": "application/json"}, json.dumps({"bootstrapBrokerString": brokers})


kafka_responses.KafkaResponse.get_bootstrap_brokers = get_bootstrap_brokers
# Before moto's `/v1/clusters/(?P<clusterArn>.+)$`, which would take the ARN and the suffix.
kafka_urls.url_paths = {r"{0}/v1/clusters/(?P<clusterArn>.+)/bootstrap-brokers$": kafka_responses.KafkaResponse.dispatch, **kafka_urls.url_paths}


def _locked(function):
    def locked(*arguments, **keywords):
        with KINESIS_LOCK:
            return function(*arguments, **keywords)

    return locked


ORIGINAL_SHARD_FOR_KEY = kinesis_models.Stream.get_shard_for_key
ORIGINAL_GET_RECORDS = kinesis_models.KinesisBackend.get_records
kinesis_models.Stream.get_shard_for_key = _open_shard_for_key
kinesis_models.Stream.put_record = _locked(kinesis_models.Stream.put_record)
kinesis_models.Stream.split_shard = _locked(_resharding_keeps_records(kinesis_models.Stream.split_shard, 1))
kinesis_models.Stream.merge_shards = _locked(_resharding_keeps_records(kinesis_models.Stream.merge_shards, 2))
kinesis_models.Stream.update_shard_count = _locked(kinesis_models.Stream.update_shard_count)
kinesis_models.KinesisBackend.get_records = _locked(_get_records_ending_closed_shards)
kinesis_models.KinesisBackend.list_shards = _locked(kinesis_models.KinesisBackend.list_shards)

if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
