// The one UDF the Spark baseline needs: base64 text of gzip bytes -> the text. Spark has no
// built-in gunzip; CAoA's Spark ETL decodes `data` with a Java UDF as well, so this keeps the
// baseline on the JVM rather than in a slower Python UDF.
package clickstream.bench;

import java.io.ByteArrayInputStream;
import java.io.ByteArrayOutputStream;
import java.nio.charset.StandardCharsets;
import java.util.Base64;
import java.util.zip.GZIPInputStream;
import org.apache.spark.sql.api.java.UDF1;

public class GunzipBase64 implements UDF1<String, String> {
    @Override
    public String call(String data) throws Exception {
        if (data == null) {
            return null;
        }
        String trimmed = data.trim();
        if (trimmed.startsWith("[") || trimmed.startsWith("{")) {
            return trimmed;
        }
        byte[] gzip = Base64.getDecoder().decode(trimmed);
        try (GZIPInputStream input = new GZIPInputStream(new ByteArrayInputStream(gzip))) {
            ByteArrayOutputStream output = new ByteArrayOutputStream(gzip.length * 4);
            input.transferTo(output);
            return output.toString(StandardCharsets.UTF_8);
        } catch (Exception error) {
            return null;
        }
    }
}
