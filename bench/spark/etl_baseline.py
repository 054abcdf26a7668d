"""The PySpark baseline of bench/etl: the same raw objects decoded, exploded and flattened into
event, item, user and session Parquet (snappy, partitioned like ours), in one local[1] job.

It does what CAoA's Spark ETL does at its core (decode `data`, parse the events with a schema,
explode, map reserved attributes to columns, write Parquet), without our enrichers' rules, so
it is a lower bound on Spark's cost for the same work.

    python etl_baseline.py <raw directory> <output directory> <udf jar>
"""

import sys
import time

from pyspark.sql import SparkSession, functions as F, types as T

raw_directory, output_directory, udf_jar = sys.argv[1:4]

spark = (
    SparkSession.builder.master("local[1]")
    .appName("clickstream-etl-baseline")
    .config("spark.jars", udf_jar)
    .config("spark.driver.memory", "4g")
    .config("spark.sql.shuffle.partitions", "1")
    .config("spark.sql.session.timeZone", "UTC")
    .config("spark.ui.enabled", "false")
    .getOrCreate()
)
spark.sparkContext.setLogLevel("ERROR")
spark.udf.registerJavaFunction("gunzip_base64", "clickstream.bench.GunzipBase64", T.StringType())

started = time.time()
raw_schema = T.StructType([
    T.StructField(name, T.StringType()) for name in ["data", "uri", "ua", "ip", "rid", "appId", "platform", "compression"]
] + [T.StructField("ingest_time", T.LongType()), T.StructField("client_timestamp", T.LongType())])
raw = spark.read.schema(raw_schema).json(f"{raw_directory}/*.gz")

string = T.StringType()
user_value = T.StructType([T.StructField("value", string), T.StructField("set_timestamp", T.LongType())])
item = T.StructType([T.StructField(name, string) for name in ["id", "name", "brand", "currency", "category"]]
                    + [T.StructField("price", T.DoubleType()), T.StructField("quantity", T.DoubleType())])
event = T.StructType(
    [T.StructField(name, string) for name in [
        "event_type", "event_id", "app_id", "unique_id", "device_id", "device_unique_id", "platform", "os_version",
        "make", "brand", "model", "carrier", "network_type", "locale", "system_language", "host_name", "app_version",
        "app_package_name", "app_title", "sdk_version", "sdk_name", "event_value_currency"]]
    + [T.StructField(name, T.LongType()) for name in ["timestamp", "screen_height", "screen_width", "viewport_height", "viewport_width", "zone_offset"]]
    + [T.StructField("event_value", T.DoubleType()),
       T.StructField("attributes", T.MapType(string, string)),
       T.StructField("user", T.MapType(string, user_value)),
       T.StructField("items", T.ArrayType(item))]
)
reserved_attributes = [
    "_session_id", "_session_start_timestamp", "_session_duration", "_session_number", "_page_url", "_page_title",
    "_page_referrer", "_latest_referrer", "_latest_referrer_host", "_screen_name", "_screen_id", "_previous_screen_name",
    "_previous_timestamp", "_engagement_time_msec", "_is_first_time", "_search_key", "_search_term",
    "_traffic_source_source", "_traffic_source_medium", "_traffic_source_campaign",
]

events = (
    raw.withColumn("body", F.expr("gunzip_base64(data)"))
    .withColumn("event", F.explode(F.from_json("body", T.ArrayType(event))))
    .select("uri", "ua", "ip", "rid", "ingest_time", "event.*")
    .withColumn("event_timestamp", F.timestamp_millis("timestamp"))
    .withColumn("event_bundle_sequence_id", F.regexp_extract("uri", r"event_bundle_sequence_id=(\d+)", 1).cast("long"))
    .withColumn("partition_app", F.col("app_id"))
    .withColumn("partition_year", F.date_format("event_timestamp", "yyyy"))
    .withColumn("partition_month", F.date_format("event_timestamp", "MM"))
    .withColumn("partition_day", F.date_format("event_timestamp", "dd"))
)
flattened = events.select(
    "*",
    *[F.col("attributes").getItem(key).alias("attribute" + key) for key in reserved_attributes],
    F.map_filter("attributes", lambda key, _: ~key.isin(reserved_attributes)).alias("custom_parameters"),
    F.to_json(F.map_filter("attributes", lambda key, _: ~key.isin(reserved_attributes))).alias("custom_parameters_json_str"),
    F.parse_url(F.col("attributes").getItem("_page_url"), F.lit("HOST")).alias("page_view_hostname"),
    F.parse_url(F.col("attributes").getItem("_page_url"), F.lit("PATH")).alias("page_view_page_url_path"),
    F.col("user").getItem("_user_id").getField("value").alias("user_id"),
).drop("attributes", "items", "user", "uri")
flattened.cache()
partitions = ["partition_app", "partition_year", "partition_month", "partition_day"]
flattened.write.mode("overwrite").partitionBy(*partitions).parquet(f"{output_directory}/event")

items = events.select("event_id", "event_type", "event_timestamp", "unique_id", *partitions, F.explode("items").alias("item")).select("*", "item.*").drop("item")
items.write.mode("overwrite").partitionBy(*partitions).parquet(f"{output_directory}/item")

users = flattened.groupBy("app_id", "unique_id").agg(
    F.max("event_timestamp").alias("event_timestamp"), F.max("user_id").alias("user_id"),
    F.min_by("attribute_traffic_source_source", "event_timestamp").alias("first_traffic_source"),
    F.min("event_timestamp").alias("first_touch_time"))
users.write.mode("overwrite").parquet(f"{output_directory}/user")

sessions = flattened.where(F.col("attribute_session_id").isNotNull()).groupBy("app_id", "unique_id", "attribute_session_id").agg(
    F.min("event_timestamp").alias("event_timestamp"), F.min_by("attribute_traffic_source_source", "event_timestamp").alias("session_source"))
sessions.write.mode("overwrite").parquet(f"{output_directory}/session")

event_count = flattened.count()
elapsed = time.time() - started
print(f'{{"events": {event_count}, "seconds": {elapsed:.2f}}}')
spark.stop()
