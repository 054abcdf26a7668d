// The page's script: the real web SDK, configured from the page's query string.
import { ClickstreamAnalytics } from '@aws/clickstream-web';

const parameters = new URLSearchParams(window.location.search);
ClickstreamAnalytics.init({
  appId: parameters.get('appId'),
  endpoint: parameters.get('endpoint'),
  isLogEvents: true,
});
ClickstreamAnalytics.record({ name: 'browser_test_click', attributes: { button: 'buy' } });
window.clickstreamRecorded = true;
