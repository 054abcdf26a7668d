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
"""

import json
import os
import sys
import time

from moto.redshiftdata import models, responses
from moto.server import main

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

if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
